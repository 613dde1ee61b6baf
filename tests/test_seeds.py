"""The worked examples of the seed material: truth from hand arithmetic (and published numbers),
not from the code. Each case writes the arithmetic next to the assertion."""
import pytest

import cnncore as cc


def count(model, shape, backend, batch_size=1):
    return cc.count(model, shape, batch_size=batch_size, backend=backend)


# ---------------------------------------------------------------------------------------------
# Parameter counts of single layers
def test_conv2d_3_10_3(backend):
    # weights 10 * 3 * 3*3 = 270, bias 10 -> 280
    r = count(cc.Conv2d(3, 10, 3), (3, 32, 32), backend)
    assert r.params == 280
    assert r.buffers == 0


def test_linear_1024_512(backend):
    # 1024 * 512 = 524,288 weights + 512 bias = 524,800
    r = count(cc.Linear(1024, 512), (1024,), backend)
    assert r.params == 524_800
    assert r.output_shape == (1, 512)
    # one output is a dot product of length 1024: macs = 512 * 1024
    assert r.macs == 524_288


@pytest.mark.parametrize("c", [1, 16, 64, 256])
def test_batchnorm2d_params_and_buffers(backend, c):
    # gamma, beta: 2C params; running_mean, running_var: 2C buffers + num_batches_tracked (1)
    r = count(cc.BatchNorm2d(c), (c, 8, 8), backend)
    assert r.params == 2 * c
    assert r.buffers == 2 * c + 1
    assert r.macs == 0


def test_depthwise_separable_vs_standard(backend):
    # depthwise Conv2d(3,3,3,groups=3,bias=False): 3 filters of 1*3*3 = 27
    # pointwise Conv2d(3,16,1,bias=False): 16 * 3 * 1*1 = 48;  27 + 48 = 75
    dw = cc.Conv2d(3, 3, 3, groups=3, bias=False)
    pw = cc.Conv2d(3, 16, 1, bias=False)
    assert count(dw, (3, 16, 16), backend).params == 27
    assert count(pw, (3, 16, 16), backend).params == 48
    assert count(cc.Sequential(dw, pw), (3, 16, 16), backend).params == 75
    # standard Conv2d(3,16,3) with bias: 16 * 3 * 9 + 16 = 432 + 16 = 448
    assert count(cc.Conv2d(3, 16, 3), (3, 16, 16), backend).params == 448


def test_conv_3_64_and_64_64(backend):
    # 64 * 3 * 9 + 64 = 1,728 + 64 = 1,792
    assert count(cc.Conv2d(3, 64, 3), (3, 32, 32), backend).params == 1_792
    # 64 * 64 * 9 + 64 = 36,864 + 64 = 36,928
    assert count(cc.Conv2d(64, 64, 3), (64, 32, 32), backend).params == 36_928


# ---------------------------------------------------------------------------------------------
# VGG-16 (torchvision layout, configuration "D")
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16():
    layers, c = [], 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(cc.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [cc.Conv2d(c, v, kernel_size=3, padding=1), cc.ReLU(inplace=True)]
            c = v
    return cc.Sequential(
        *layers, cc.AdaptiveAvgPool2d((7, 7)), cc.Flatten(),
        cc.Linear(512 * 7 * 7, 4096), cc.ReLU(True), cc.Dropout(),
        cc.Linear(4096, 4096), cc.ReLU(True), cc.Dropout(),
        cc.Linear(4096, 1000))


def test_vgg16(backend):
    r = count(vgg16(), (3, 224, 224), backend)
    # convs (k=3, weights c_in*c_out*9 + bias c_out):
    #   3*64*9+64 = 1,792           64*64*9+64 = 36,928
    #   64*128*9+128 = 73,856       128*128*9+128 = 147,584
    #   128*256*9+256 = 295,168     256*256*9+256 = 590,080 (x2)
    #   256*512*9+512 = 1,180,160   512*512*9+512 = 2,359,808 (x5)
    #   total 1,792+36,928+73,856+147,584+295,168+2*590,080+1,180,160+5*2,359,808 = 14,714,688
    convs = 1_792 + 36_928 + 73_856 + 147_584 + 295_168 + 2 * 590_080 + 1_180_160 + 5 * 2_359_808
    assert convs == 14_714_688
    # FCs: 25088*4096+4096 = 102,764,544; 4096*4096+4096 = 16,781,312; 4096*1000+1000 = 4,097,000
    fcs = 102_764_544 + 16_781_312 + 4_097_000
    assert fcs == 123_642_856
    assert r.params == convs + fcs == 138_357_544
    # float32: 4 bytes each
    assert r.param_bytes == 138_357_544 * 4 == 553_430_176
    assert r.buffers == 0
    assert r.output_shape == (1, 1000)
    # torchvision publishes 15.47 "GFLOPS" (= MACs). Exact, checked against
    # torch.utils.flop_counter.FlopCounterMode(...).get_total_flops() // 2 on a hand-built torch VGG-16:
    #   convs: 224^2*(1728+36864) + 112^2*(73728+147456) + 56^2*(294912+2*589824)
    #        + 28^2*(1179648+2*2359296) + 14^2*(3*2359296) = 15,346,630,656
    #   FCs: 102,760,448 + 16,777,216 + 4,096,000 = 123,633,664
    conv_macs = (224**2 * (1728 + 36864) + 112**2 * (73728 + 147456) + 56**2 * (294912 + 2 * 589824)
                 + 28**2 * (1179648 + 2 * 2359296) + 14**2 * (3 * 2359296))
    assert conv_macs == 15_346_630_656
    assert r.macs == conv_macs + 123_633_664 == 15_470_264_320
    assert round(r.macs / 1e9, 2) == 15.47
    # batch 2 doubles macs, not params
    r2 = count(vgg16(), (3, 224, 224), backend, batch_size=2)
    assert r2.macs == 2 * 15_470_264_320 and r2.params == 138_357_544


# ---------------------------------------------------------------------------------------------
# Shapes and MACs of single convolutions
def test_alexnet_first_layer(backend):
    # (227 - 11) / 4 + 1 = 55; params 96 * 3 * 11*11 + 96 = 34,848 + 96 = 34,944
    r = count(cc.Conv2d(3, 96, 11, stride=4), (3, 227, 227), backend)
    assert r.output_shape == (1, 96, 55, 55)
    assert r.params == 34_944
    # macs = 96*55*55 outputs * (3*11*11 = 363) = 105,415,200
    assert r.macs == 96 * 55 * 55 * 363 == 105_415_200


def test_conv5x5_64_128_on_32(backend):
    # 32 - 5 + 1 = 28; weights 128 * 64 * 25 = 204,800 (bias=False)
    r = count(cc.Conv2d(64, 128, 5, bias=False), (64, 32, 32), backend)
    assert r.output_shape == (1, 128, 28, 28)
    assert r.params == 204_800
    # macs = 28*28 * 128 * (64*25) = 784 * 204,800 = 160,563,200
    assert r.macs == 160_563_200


@pytest.mark.parametrize("size,out,macs", [(4, 2, 36), (3, 1, 9)])
def test_tiny_conv(backend, size, out, macs):
    # 3x3 kernel, 1->1 channel: out = size - 3 + 1; macs = out*out * 9 (4x4 -> 2x2: 36; 3x3 -> 1x1: 9)
    r = count(cc.Conv2d(1, 1, 3), (1, size, size), backend)
    assert r.output_shape == (1, 1, out, out)
    assert r.macs == macs
    assert r.params == 10  # 9 weights + 1 bias


def test_tiny_conv_too_small_input(backend):
    # a 2x2 input cannot hold a 3x3 kernel: torch raises, so must cnncore
    with pytest.raises(cc.ShapeError):
        count(cc.Conv2d(1, 1, 3), (1, 2, 2), backend)


def test_1d_convnet(backend):
    m = cc.Sequential(
        cc.Conv1d(1, 16, 3, padding=1), cc.ReLU(), cc.MaxPool1d(2),
        cc.Conv1d(16, 32, 3, padding=1), cc.ReLU(), cc.MaxPool1d(2),
        cc.Flatten(), cc.Linear(800, 128), cc.ReLU(), cc.Linear(128, 10))
    r = count(m, (1, 100), backend)
    # shapes: 1x100 -> 16x100 -> 16x50 -> 32x50 -> 32x25 -> 800 -> 128 -> 10
    assert [row.output_shape for row in r.layers] == [
        (1, 16, 100), (1, 16, 100), (1, 16, 50), (1, 32, 50), (1, 32, 50), (1, 32, 25),
        (1, 800), (1, 128), (1, 128), (1, 10)]
    # params: 16*1*3+16 = 64; 32*16*3+32 = 1,568; 800*128+128 = 102,528; 128*10+10 = 1,290
    #   64 + 1,568 + 102,528 + 1,290 = 105,450
    assert r.params == 105_450
    # macs: 16*100*3 = 4,800; 32*50*48 = 76,800; 800*128 = 102,400; 128*10 = 1,280 -> 185,280
    assert r.macs == 185_280
    assert r.output_shape == (1, 10)


def test_maxpool_3_2_on_alexnet_map(backend):
    # (55 - 3) // 2 + 1 = 27; a max over 9 values is 8 comparisons
    r = count(cc.MaxPool2d(3, 2), (96, 55, 55), backend)
    assert r.output_shape == (1, 96, 27, 27)
    assert r.flops == 96 * 27 * 27 * 8 == 559_872
    assert r.params == 0 and r.macs == 0
