"""Functional graphs (cc.Input, layer calls, add/mul/cat/split/chunk/flatten, cc.Model), checked by hand.

Every expected number below is worked out in a comment from docs/conventions.md; counts run on both
backends (the `backend` fixture: the compiled core and the pure-Python reference).
"""
from __future__ import annotations

import pytest

import cnncore as cc

F32 = 4  # bytes per float32 element


def shapes(ts):
    return [t.shape for t in ts]


# ---------------------------------------------------------------------------------------------
# Tensors: shapes known at once
def test_input_shape_has_batch_first():
    x = cc.Input((3, 32, 32))
    assert x.shape == (1, 3, 32, 32)
    assert x.ndim == 4
    x2 = cc.Input((3, 32, 32), batch_size=5)
    assert x2.shape == (5, 3, 32, 32)
    assert cc.Input(7).shape == (1, 7)


def test_layer_call_shape_known_at_once():
    x = cc.Input((3, 32, 32), batch_size=2)
    # (32 + 2*1 - 3) // 2 + 1 = 16
    y = cc.Conv2d(3, 8, 3, stride=2, padding=1)(x)
    assert y.shape == (2, 8, 16, 16)
    # MaxPool2d(2): 16 // 2 = 8
    p = cc.MaxPool2d(2)(y)
    assert p.shape == (2, 8, 8, 8)
    f = cc.Flatten()(p)  # 8*8*8 = 512
    assert f.shape == (2, 512)
    assert cc.Linear(512, 10)(f).shape == (2, 10)
    assert cc.AdaptiveAvgPool2d(1)(y).shape == (2, 8, 1, 1)


def test_wrong_call_raises_at_once_naming_the_layer():
    x = cc.Input((3, 16, 16))
    with pytest.raises(cc.ShapeError) as e:
        cc.Conv2d(4, 8, 3)(x, name="stem_conv")  # 3 channels in, 4 declared
    assert "stem_conv" in str(e.value)
    assert e.value.layer_name == "stem_conv"
    f = cc.Flatten()(x)  # 3*16*16 = 768
    with pytest.raises(cc.ShapeError) as e:
        cc.Linear(100, 10)(f, name="classifier")
    assert "classifier" in str(e.value)
    with pytest.raises(cc.ShapeError):
        cc.MaxPool2d(32)(x)  # window 32 over 16: output size 0
    # an unnamed failing call still names its type
    with pytest.raises(cc.ShapeError) as e:
        cc.BatchNorm2d(5)(x)
    assert "BatchNorm2d" in str(e.value)


def test_failed_call_adds_nothing_to_the_graph(backend):
    x = cc.Input((3, 8, 8))
    y = cc.Conv2d(3, 4, 1)(x)  # 3*4 + 4 = 16 params
    with pytest.raises(cc.ShapeError):
        cc.Conv2d(5, 4, 1)(y)
    r = cc.count(cc.Model(x, y), backend=backend)
    assert r.params == 16
    assert len(r.layers) == 1


# ---------------------------------------------------------------------------------------------
# add / mul with broadcasting
def test_add_and_mul_same_shape(backend):
    x = cc.Input((4, 5, 5))
    a = cc.Conv2d(4, 4, 1, bias=False)(x)  # 16 params, macs = 100*4 = 400
    s = cc.add(a, x, name="the_add")
    m = a * x
    assert s.shape == m.shape == (1, 4, 5, 5)
    assert (a + x).shape == cc.mul(x, a).shape == (1, 4, 5, 5)
    r = cc.count(cc.Model(x, s), backend=backend)
    # conv flops = 100 * (2*4 - 1) = 700; add: one per output element = 100
    # (the other add/mul calls are unused rows: 0 FLOPs)
    assert (r.params, r.macs, r.flops) == (16, 400, 800)
    row = {l.name: l for l in r.layers}["the_add"]
    assert row.type == "Add" and row.flops == 100


def test_mul_broadcast_se_style(backend):
    x = cc.Input((8, 6, 6), batch_size=2)
    g = cc.AdaptiveAvgPool2d(1)(x)
    assert g.shape == (2, 8, 1, 1)
    y = x * g
    assert y.shape == (2, 8, 6, 6)
    assert (g * x).shape == (2, 8, 6, 6)  # an unused row of the model below: 0 FLOPs
    r = cc.count(cc.Model(x, y), backend=backend)
    # mul flops = numel(y) = 2*8*6*6 = 576; adaptive avg flops = N*C*prod(w) = 2*8*36 = 576
    assert r.layers[-2].name == "mul" and r.layers[-2].flops == 576
    assert r.layers[-1].name == "mul_1" and r.layers[-1].flops == 0  # unused
    assert r.flops == 576 + 576
    assert r.macs == 0 and r.output_shape == (2, 8, 6, 6)


def test_broadcast_other_patterns():
    x = cc.Input((4, 3, 3))
    row = cc.Input((3,))  # (1, 3): aligned from the right with the last dim
    assert (x + row).shape == (1, 4, 3, 3)
    one = cc.Conv2d(4, 1, 1)(x)  # (1, 1, 3, 3): broadcast over channels
    assert (x * one).shape == (1, 4, 3, 3)
    assert (one + x).shape == (1, 4, 3, 3)


def test_broadcast_incompatible_raises():
    x = cc.Input((4, 8, 8))
    three = cc.Conv2d(4, 3, 1)(x)  # channels 4 vs 3: neither is 1
    with pytest.raises(cc.ShapeError):
        x + three
    with pytest.raises(cc.ShapeError):
        cc.mul(x, three, name="scale")
    half = cc.MaxPool2d(2)(x)  # 8 vs 4 spatially
    with pytest.raises(cc.ShapeError) as e:
        cc.add(x, half, name="skip_add")
    assert "skip_add" in str(e.value)
    with pytest.raises(cc.ShapeError):
        x * cc.Input((5,))  # last dim 8 vs 5


# ---------------------------------------------------------------------------------------------
# cat / split / chunk / flatten
def test_cat_dim1_and_other_dims(backend):
    x = cc.Input((2, 4, 4))
    a = cc.Conv2d(2, 3, 1)(x)
    b = cc.Conv2d(2, 5, 1)(x)
    c = cc.cat([a, b, x])  # 3 + 5 + 2 = 10 channels
    assert c.shape == (1, 10, 4, 4)
    assert cc.cat([a, a], dim=2).shape == (1, 3, 8, 4)
    assert cc.cat([a, a, a], dim=-1).shape == (1, 3, 4, 12)
    assert cc.cat([a], dim=1).shape == a.shape
    assert cc.cat([a, a], dim=0).shape == (2, 3, 4, 4)  # torch.cat along the batch
    r = cc.count(cc.Model(x, c), backend=backend)
    assert r.output_shape == (1, 10, 4, 4)
    assert r.layers[-1].flops == 0 and r.layers[-1].type == "Cat"


def test_cat_mismatch_raises():
    x = cc.Input((2, 4, 4))
    p = cc.MaxPool2d(2)(x)  # (1, 2, 2, 2)
    with pytest.raises(cc.ShapeError):
        cc.cat([x, p])  # spatial 4 vs 2
    with pytest.raises(cc.ShapeError):
        cc.cat([x, cc.Conv2d(2, 3, 1)(x)], dim=2)  # channels differ outside dim 2
    with pytest.raises(cc.ShapeError):
        cc.cat([x, x], dim=4)  # ndim 4: dims -4..3
    with pytest.raises(cc.ShapeError):
        cc.cat([x, cc.Flatten()(x)])  # ndim 4 vs 2


def test_split_by_size_and_sections():
    x = cc.Input((7, 4, 4))
    # torch.split(t, 3, dim=1) on 7 channels: 3, 3, 1
    assert shapes(cc.split(x, 3)) == [(1, 3, 4, 4), (1, 3, 4, 4), (1, 1, 4, 4)]
    assert shapes(cc.split(x, 7)) == [(1, 7, 4, 4)]
    assert shapes(cc.split(x, 10)) == [(1, 7, 4, 4)]
    assert shapes(cc.split(x, [1, 2, 4])) == [(1, 1, 4, 4), (1, 2, 4, 4), (1, 4, 4, 4)]
    assert shapes(cc.split(x, 2, dim=2)) == [(1, 7, 2, 4), (1, 7, 2, 4)]
    assert shapes(cc.split(x, [3, 1], dim=-1)) == [(1, 7, 4, 3), (1, 7, 4, 1)]
    with pytest.raises(cc.ShapeError):
        cc.split(x, [3, 3])  # sums to 6, not 7
    with pytest.raises(cc.ShapeError):
        cc.split(x, 2, dim=4)


def test_chunk_torch_semantics():
    def chunk_sizes(c, n):
        x = cc.Input((c, 2, 2))
        return [t.shape[1] for t in cc.chunk(x, n)]
    assert chunk_sizes(6, 2) == [3, 3]
    assert chunk_sizes(6, 3) == [2, 2, 2]
    assert chunk_sizes(5, 3) == [2, 2, 1]  # ceil(5/3) = 2
    assert chunk_sizes(6, 4) == [2, 2, 2]  # ceil(6/4) = 2: torch gives only 3 chunks
    assert chunk_sizes(2, 4) == [1, 1]  # fewer chunks than asked
    assert chunk_sizes(7, 1) == [7]
    assert chunk_sizes(10, 4) == [3, 3, 3, 1]
    x = cc.Input((4, 6, 2))
    assert shapes(cc.chunk(x, 4, dim=2)) == [(1, 4, 2, 2)] * 3


def test_split_pieces_cost_nothing(backend):
    x = cc.Input((6, 3, 3))
    a, b = cc.chunk(x, 2)
    y = cc.cat([b, a])
    r = cc.count(cc.Model(x, y), backend=backend)
    assert r.params == r.macs == r.flops == 0
    assert r.output_shape == (1, 6, 3, 3)
    assert [l.output_shape for l in r.layers] == [(1, 3, 3, 3), (1, 3, 3, 3), (1, 6, 3, 3)]


def test_flatten_functional_and_layer():
    x = cc.Input((3, 4, 5), batch_size=2)
    assert cc.flatten(x, 1).shape == (2, 60)
    assert cc.flatten(x).shape == (120,)  # torch.flatten's default start_dim=0 takes the batch too
    assert cc.flatten(x, 2).shape == (2, 3, 20)
    assert cc.flatten(x, 1, 2).shape == (2, 12, 5)
    assert cc.Flatten()(x).shape == (2, 60)
    assert cc.Flatten(0, 1)(x).shape == (6, 4, 5)
    with pytest.raises(cc.ShapeError):
        cc.flatten(x, 3, 1)
    with pytest.raises(cc.ShapeError):
        cc.flatten(x, 5)


# ---------------------------------------------------------------------------------------------
# Nesting and names
def _basic_block(c):
    x = cc.Input((c, 8, 8))
    y = cc.Conv2d(c, c, 3, padding=1, bias=False)(x, name="conv1")
    y = cc.BatchNorm2d(c)(y, name="bn1")
    y = cc.ReLU()(y, name="relu")
    y = cc.Conv2d(c, c, 3, padding=1, bias=False)(y, name="conv2")
    y = cc.BatchNorm2d(c)(y, name="bn2")
    return cc.Model(x, cc.ReLU()(y + x, name="relu_out"))


def test_hierarchical_names(backend):
    x = cc.Input((4, 8, 8))
    y = cc.Sequential(_basic_block(4), _basic_block(4))(x, name="layer1")
    y = cc.Conv2d(4, 2, 1)(y)
    y = cc.Conv2d(2, 2, 1)(y)
    z = cc.ReLU()(y)
    r = cc.count(cc.Model(x, z), backend=backend)
    names = [l.name for l in r.layers]
    assert names[:7] == ["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2",
                         "layer1.0.bn2", "layer1.0.add", "layer1.0.relu_out"]
    assert names[7] == "layer1.1.conv1"
    assert names[-3:] == ["conv2d", "conv2d_1", "relu"]  # torch.fx-style names of unnamed calls
    # block params: 2 convs 4*4*9 = 144 each, 2 BNs 8 each -> 304; buffers 2 BNs * (2*4 + 1) = 18
    # head: conv 4*2 + 2 = 10, conv 2*2 + 2 = 6
    assert r.params == 2 * 304 + 10 + 6
    assert r.buffers == 2 * 18
    # block macs: 2 convs * 64 positions * 4 out * 36 = 18432; head 64*2*4 + 64*2*2 = 768
    assert r.macs == 2 * 18432 + 768


def test_model_inside_model_names(backend):
    inner_x = cc.Input((3, 4, 4))
    inner = cc.Model(inner_x, cc.Conv2d(3, 3, 1)(inner_x, name="proj"))
    mid_x = cc.Input((3, 4, 4))
    mid = cc.Model(mid_x, inner(mid_x, name="inner"))
    x = cc.Input((3, 4, 4))
    r = cc.count(cc.Model(x, mid(x, name="outer")), backend=backend)
    assert [l.name for l in r.layers] == ["outer.inner.proj"]
    assert r.params == 12


def test_model_called_twice_shares_nothing_but_names(backend):
    blk = _basic_block(4)
    x = cc.Input((4, 8, 8))
    y = blk(blk(x, name="a"), name="b")
    r = cc.count(cc.Model(x, y), backend=backend)
    assert {l.name.split(".")[0] for l in r.layers} == {"a", "b"}
    # each call emits its rows (torch would share the weights; cnncore counts the layers it runs)
    assert len(r.layers) == 14


# ---------------------------------------------------------------------------------------------
# Multiple outputs, unused branches
def test_two_outputs(backend):
    x = cc.Input((2, 4, 4))
    a = cc.Conv2d(2, 4, 1)(x)  # (1, 4, 4, 4)
    b = cc.ReLU()(a)
    c = cc.Conv2d(4, 1, 1)(b)  # (1, 1, 4, 4)
    r = cc.count(cc.Model(x, [c, a]), backend=backend)
    assert r.output_shapes == [(1, 1, 4, 4), (1, 4, 4, 4)]
    assert r.output_shape == (1, 1, 4, 4)
    r2 = cc.count(cc.Model(x, [a, c]), backend=backend)
    assert r2.output_shapes == [(1, 4, 4, 4), (1, 1, 4, 4)]
    assert r2.output_shape == (1, 4, 4, 4)
    # both outputs depend on everything: params 2*4+4 + 4*1+1 = 17; macs 16*4*2 + 16*1*4 = 192
    assert r.params == r2.params == 17
    assert r.macs == r2.macs == 192


def test_unused_aux_head_counts_params_only(backend):
    x = cc.Input((3, 8, 8))
    f = cc.Conv2d(3, 4, 3, padding=1)(x, name="features")  # 4*3*9 + 4 = 112 params; macs 64*4*27 = 6912
    aux = cc.AdaptiveAvgPool2d(1)(f, name="aux_pool")
    aux = cc.Flatten()(aux, name="aux_flat")
    aux = cc.Linear(4, 10)(aux, name="aux_fc")  # 50 params, never needed
    aux_bn = cc.BatchNorm1d(10)(aux, name="aux_bn")  # 20 params, 21 buffers
    main = cc.ReLU()(f, name="relu")
    r = cc.count(cc.Model(x, main), backend=backend)
    assert r.params == 112 + 50 + 20
    assert r.buffers == 21
    assert r.macs == 6912
    # conv flops 256 * (2*27 - 1 + 1) = 13824; relu 256
    assert r.flops == 13824 + 256
    # activation elements: features 256 + relu 256 (the aux head is not run)
    assert r.activation_elements == 512
    assert r.output_shape == (1, 4, 8, 8)
    by_name = {l.name: l for l in r.layers}
    assert by_name["aux_fc"].params == 50
    assert by_name["aux_fc"].macs == 0 and by_name["aux_fc"].flops == 0
    assert by_name["aux_fc"].output_shape == (1, 10)  # still shaped
    assert aux_bn.shape == (1, 10)


def test_unused_branch_is_still_checked():
    x = cc.Input((3, 8, 8))
    cc.ReLU()(x)
    with pytest.raises(cc.ShapeError):
        cc.Linear(5, 2)(x)  # wrong in_features fails at the call even if never used


def test_output_not_from_inputs_rejected():
    x = cc.Input((3, 4, 4))
    other = cc.Input((3, 4, 4))
    y = cc.ReLU()(other)
    with pytest.raises(ValueError):
        cc.Model(x, y)


# ---------------------------------------------------------------------------------------------
# peak_activation_bytes by hand (float32: 4 bytes per element)
def test_peak_plain_chain(backend):
    x = cc.Input((3, 8, 8))  # 192
    y = cc.Conv2d(3, 4, 3, padding=1)(x)  # 256
    y = cc.ReLU()(y)  # 256
    y = cc.Flatten()(y)  # view of relu's 256
    y = cc.Linear(256, 10)(y)  # 10
    r = cc.count(cc.Model(x, y), backend=backend)
    # start: x = 192
    # conv:  192 + 256 = 448, free x -> 256
    # relu:  256 + 256 = 512, free conv -> 256
    # flatten: view, 256
    # linear: 256 + 10 = 266, free relu (through the view) -> 10
    assert r.peak_activation_bytes == 512 * F32
    assert r.activation_elements == 256 + 256 + 256 + 10
    r16 = cc.count(cc.Model(x, y), dtype="float16", backend=backend)
    assert r16.peak_activation_bytes == 512 * 2


def test_peak_residual_skip_keeps_input(backend):
    x = cc.Input((4, 8, 8))  # 256
    c1 = cc.Conv2d(4, 4, 3, padding=1)(x)
    r1 = cc.ReLU()(c1)
    c2 = cc.Conv2d(4, 4, 3, padding=1)(r1)
    s = c2 + x
    out = cc.ReLU()(s)
    r = cc.count(cc.Model(x, out), backend=backend)
    # start x 256
    # c1: 256 + 256 = 512 (x still read by add)
    # r1: 512 + 256 = 768, free c1 -> 512
    # c2: 512 + 256 = 768, free r1 -> 512
    # add: 512 + 256 = 768, free x and c2 -> 256
    # relu: 512
    assert r.peak_activation_bytes == 768 * F32
    assert r.activation_elements == 5 * 256
    # the same chain without the skip peaks at 512
    y = cc.Conv2d(4, 4, 3, padding=1)(cc.ReLU()(cc.Conv2d(4, 4, 3, padding=1)(x)))
    assert cc.count(cc.Model(x, cc.ReLU()(y)), backend=backend).peak_activation_bytes == 512 * F32


def test_peak_concat_two_branches(backend):
    x = cc.Input((2, 4, 4))  # 32
    a = cc.Conv2d(2, 3, 1)(x)  # 48
    b = cc.Conv2d(2, 5, 1)(x)  # 80
    c = cc.cat([a, b])  # 128
    r = cc.count(cc.Model(x, c), backend=backend)
    # start 32; a: 80; b: 160, free x -> 128; cat: 256, free a, b -> 128
    assert r.peak_activation_bytes == 256 * F32
    assert r.activation_elements == 48 + 80 + 128


def test_peak_unused_branch_never_runs(backend):
    x = cc.Input((2, 4, 4))  # 32
    m1 = cc.Conv2d(2, 3, 1)(x)  # 48
    m2 = cc.Conv2d(3, 3, 1)(m1)  # 48
    dead = cc.Conv2d(2, 8, 1)(x)  # 128, made after m2, nothing depends on it
    cc.ReLU()(dead)
    r = cc.count(cc.Model(x, m2), backend=backend)
    # start 32; m1: 80, x's last (running) reader is m1 -> free x -> 48; m2: 96, free m1 -> 48
    # (if the dead conv kept x alive: m2 would peak at 32 + 48 + 48 = 128; if it ran: 48 + 32 + 128)
    assert r.peak_activation_bytes == 96 * F32
    assert r.activation_elements == 96
    assert r.params == 9 + 12 + 24  # dead conv 2*8 + 8 = 24 params counted
    assert r.macs == 16 * 3 * 2 + 16 * 3 * 3


def test_peak_identity_dropout_are_views(backend):
    x = cc.Input((4, 2, 2))  # 16
    c = cc.Conv2d(4, 4, 1)(x)  # 16
    i = cc.Identity()(c)  # view of c
    d = cc.Dropout(0.5)(i)  # view of c
    s = c + d  # 16
    r = cc.count(cc.Model(x, s), backend=backend)
    # start 16; conv: 32, free x -> 16; identity/dropout: nothing; add: 32, free c -> 16
    # (were the views allocated: identity 32, dropout 48, add 48)
    assert r.peak_activation_bytes == 32 * F32
    # activation_elements counts every layer's output, views included: 16 * 4
    assert r.activation_elements == 64


def test_peak_view_keeps_source_alive(backend):
    x = cc.Input((1, 2, 2))  # 4
    c = cc.Conv2d(1, 4, 1)(x)  # 16
    a, b = cc.chunk(c, 2)  # views (1, 2, 2, 2)
    m = a * b  # 8
    r = cc.count(cc.Model(x, m), backend=backend)
    # start 4; conv: 20, free x -> 16; pieces: views; mul: 24, free c -> 8
    # (allocated pieces would give 24, 32, 40)
    assert r.peak_activation_bytes == 24 * F32
    assert r.activation_elements == 16 + 8 + 8 + 8


def test_peak_output_view_keeps_source_to_the_end(backend):
    x = cc.Input((4, 2, 2))  # 16
    c = cc.Conv2d(4, 4, 1)(x)  # 16
    f = cc.Flatten()(c)  # view of c, an output
    g = cc.Linear(16, 40)(f)  # 40
    h = cc.Linear(40, 40)(g)  # 40
    r = cc.count(cc.Model(x, [h, f]), backend=backend)
    # start 16; conv: 32 -> 16; flatten view; g: 56 (c kept: read by g, and an output);
    # h: 16 + 40 + 40 = 96, free g -> 56
    assert r.peak_activation_bytes == 96 * F32
    assert r.output_shapes == [(1, 40), (1, 16)]


def test_peak_two_outputs_live_to_the_end(backend):
    x = cc.Input((2, 4, 4))  # 32
    a = cc.Conv2d(2, 4, 1)(x)  # 64, an output
    b = cc.ReLU()(a)  # 64
    c = cc.Conv2d(4, 1, 1)(b)  # 16, an output
    r = cc.count(cc.Model(x, [c, a]), backend=backend)
    # start 32; a: 96, free x -> 64; b: 128 (a is kept: an output); c: 144, free b -> 80
    # (without keeping a: b would free it -> 64, then c: 80, peak 128)
    assert r.peak_activation_bytes == 144 * F32
    assert r.activation_elements == 64 + 64 + 16
    # single output c: a is freed by b -> peak 128
    assert cc.count(cc.Model(x, c), backend=backend).peak_activation_bytes == 128 * F32


def test_peak_batch_scales(backend):
    x = cc.Input((3, 8, 8), batch_size=3)
    y = cc.Linear(256, 10)(cc.Flatten()(cc.ReLU()(cc.Conv2d(3, 4, 3, padding=1)(x))))
    r = cc.count(cc.Model(x, y), backend=backend)
    assert r.peak_activation_bytes == 3 * 512 * F32  # the plain chain above, batch 3
    assert r.activation_elements == 3 * 778


def test_peak_se_block(backend):
    x = cc.Input((8, 4, 4))  # 128
    g = cc.AdaptiveAvgPool2d(1)(x)  # 8
    g = cc.Conv2d(8, 2, 1)(g)  # 2
    g = cc.ReLU()(g)  # 2
    g = cc.Conv2d(2, 8, 1)(g)  # 8
    g = cc.Sigmoid()(g)  # 8
    y = x * g  # 128
    r = cc.count(cc.Model(x, y), backend=backend)
    # start 128; pool 136; conv 138 -> 130; relu 132 -> 130; conv 138 -> 136; sigmoid 144 -> 136;
    # mul 136 + 128 = 264 -> 128
    assert r.peak_activation_bytes == 264 * F32
    assert r.activation_elements == 8 + 2 + 2 + 8 + 8 + 128
    # params: 8*2 + 2 + 2*8 + 8 = 42; macs 16 + 16 = 32
    assert (r.params, r.macs) == (42, 32)


def test_graph_matches_sequential(backend):
    """A chain built as a graph counts exactly as the same Sequential."""
    seq = cc.Sequential(cc.Conv2d(3, 8, 3, padding=1), cc.BatchNorm2d(8), cc.ReLU(), cc.MaxPool2d(2),
                        cc.Flatten(), cc.Linear(8 * 4 * 4, 5))
    x = cc.Input((3, 8, 8), batch_size=2)
    y = x
    for layer in seq:
        y = layer(y)
    rg = cc.count(cc.Model(x, y), backend=backend)
    rs = cc.count(seq, (3, 8, 8), batch_size=2, backend=backend)
    for k in ("params", "buffers", "macs", "flops", "output_shape", "activation_elements",
              "peak_activation_bytes"):
        assert getattr(rg, k) == getattr(rs, k), k
    x2 = cc.Input((3, 8, 8), batch_size=2)  # a fresh input: x's calls would be unused rows here
    rc = cc.count(cc.Model(x2, seq(x2)), backend=backend)
    assert (rc.params, rc.macs, rc.flops, rc.peak_activation_bytes) == (rs.params, rs.macs, rs.flops,
                                                                         rs.peak_activation_bytes)


def test_submodel_unused_aux_inside_call(backend):
    i = cc.Input((3, 4, 4))
    f = cc.Conv2d(3, 4, 1)(i, name="f")  # 3*4 + 4 = 16 params; macs 16 * 4 * 3 = 192
    cc.Linear(4, 5)(cc.Flatten()(cc.AdaptiveAvgPool2d(1)(f)), name="aux")  # 25 params, unused
    sub = cc.Model(i, cc.ReLU()(f, name="relu"))
    z = cc.Input((3, 4, 4))
    r = cc.count(cc.Model(z, sub(z, name="sub")), backend=backend)
    assert [l.name for l in r.layers] == ["sub.f", "sub.adaptive_avg_pool2d", "sub.flatten", "sub.aux",
                                          "sub.relu"]
    assert (r.params, r.macs) == (41, 192)
    # conv flops 64 * (2*3 - 1 + 1) = 384, relu 64; the aux rows 0
    assert r.flops == 448
    assert r.activation_elements == 128
    # start 48; f: 112 -> 64; relu: 128 -> 64
    assert r.peak_activation_bytes == 128 * F32
    # a sub-model call nothing depends on: params only
    z2 = cc.Input((3, 4, 4))
    sub(z2, name="u")
    r2 = cc.count(cc.Model(z2, cc.ReLU()(z2)), backend=backend)
    assert (r2.params, r2.macs, r2.flops, r2.activation_elements) == (41, 0, 48, 48)


def test_input_as_an_output_and_two_inputs(backend):
    x = cc.Input((2, 4, 4))  # 32
    y = cc.Conv2d(2, 3, 1)(x)  # 48
    r = cc.count(cc.Model(x, [y, x]), backend=backend)
    assert r.output_shapes == [(1, 3, 4, 4), (1, 2, 4, 4)]
    assert r.peak_activation_bytes == (32 + 48) * F32
    p, q = cc.Input((2, 4, 4)), cc.Input((2, 4, 4))
    r = cc.count(cc.Model([p, q], p + q), backend=backend)
    # both inputs live at the start: 32 + 32, then the add: + 32
    assert r.peak_activation_bytes == 96 * F32
    assert r.flops == 32
