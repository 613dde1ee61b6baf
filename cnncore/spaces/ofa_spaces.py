"""Once-for-All's sampling spaces: OFA-MobileNetV3 and OFA-ProxylessNAS (Cai et al., ICLR 2020).

Transcribed from mit-han-lab/once-for-all ``ofa/imagenet_classification/elastic_nn/networks``
(OFAMobileNetV3, OFAProxylessNASNets: ``__init__`` for the stage layout, ``get_active_net_config``
for the sub-network, ``sample_active_subnet`` for the choices) and ``elastic_nn/modules/
dynamic_layers.py`` (DynamicMBConvLayer.get_active_subnet: ``mid_channels =
make_divisible(round(in_channels * expand_ratio), 8)``; DynamicSE: ``make_divisible(mid // 4, 8)``).

A candidate is ``ks`` (kernel size of every block), ``e`` (expand ratio of every block), ``d``
(depth of every elastic stage: its first d blocks run) and ``r`` (input resolution). Skipped
blocks keep a ks / e entry that does not matter, as in OFA's own arch dicts.

- OFAMobileNetV3 (``ofa_mbv3_d234_e346_k357_w1.0`` / ``_w1.2``): first_conv 3x3/2 h_swish; a fixed
  first block (MBConv 3x3, expand 1, relu, identity shortcut when the widths match); 5 stages x 4
  blocks (widths 24 40 80 112 160 x width_mult, strides 2 2 2 1 2, acts relu relu h_swish h_swish
  h_swish, SE in stages 2, 4, 5); final_expand 1x1 (960), global mean, feature_mix 1x1 (1280,
  no BN), classifier. ks, e: (n, 20); d: (n, 5).
- OFAProxylessNASNets (``ofa_proxyless_d234_e346_k357_w1.3``): first_conv 3x3/2 relu6; a fixed
  first block (MBConv 3x3, expand 1, no shortcut); 6 stages of 4, 4, 4, 4, 4 and 1 blocks (widths
  24 40 80 96 192 320 x width_mult, strides 2 2 2 1 2 1, relu6, no SE; the last stage has depth
  1); feature_mix 1x1 (1280) with BN, global mean, classifier. ks, e: (n, 21); d: (n, 5).

Widths are ``make_divisible(base * width_mult, 8)``. ``.net_config(candidate)`` is the
sub-network's ``net.config`` (what OFA's ``get_active_net_config`` writes) and ``.model`` is
``from_ofa_config`` of it: the template used by ``.pack`` is the same code with Choice values.
"""
from __future__ import annotations

from ._template import Choice, TemplateSpace
from .ofa import from_ofa_config, make_divisible

__all__ = ["OFAMobileNetV3", "OFAProxylessNAS"]

RESOLUTIONS = tuple(range(128, 225, 4))  # OFA's elastic resolution: 128..224 in steps of 4


def _conv(cin, cout, k, stride, act, use_bn=True):
    return {"name": "ConvLayer", "kernel_size": k, "stride": stride, "dilation": 1, "groups": 1, "bias": False,
            "has_shuffle": False, "in_channels": cin, "out_channels": cout, "use_bn": use_bn, "act_func": act,
            "dropout_rate": 0, "ops_order": "weight_bn_act"}


def _mb_block(cin, cout, k, stride, e, mid, act, se, shortcut, when=None):
    block = {"name": "ResidualBlock",
             "conv": {"name": "MBConvLayer", "in_channels": cin, "out_channels": cout, "kernel_size": k,
                      "stride": stride, "expand_ratio": e, "mid_channels": mid, "act_func": act, "use_se": se},
             "shortcut": {"name": "IdentityLayer", "in_channels": [cin], "out_channels": [cout]} if shortcut else None}
    if when is not None:
        block["_when"] = when
    return block


class _OFASpace(TemplateSpace):
    """Shared by the two OFA spaces: stage layout -> net.config -> from_ofa_config."""

    kind = ""
    base_widths = ()  # first_conv, first block, stages..., (final_expand), feature_mix
    stage_blocks = ()
    strides = ()
    acts = ()
    se = ()

    def __init__(self, width_mult, ks, expand, depth, resolutions, num_classes, dropout_rate):
        self.width_mult, self.num_classes, self.dropout_rate = float(width_mult), int(num_classes), float(dropout_rate)
        if self.width_mult <= 0:
            raise ValueError(f"{type(self).__name__}: width_mult must be > 0, got {width_mult}")
        if any(not 1 <= int(d) <= max(self.stage_blocks) for d in depth):
            raise ValueError(f"{type(self).__name__}: depths must be 1..{max(self.stage_blocks)}, got {list(depth)}")
        if any(int(k) < 1 or int(k) % 2 == 0 for k in ks):
            raise ValueError(f"{type(self).__name__}: kernel sizes must be odd and >= 1, got {list(ks)}")
        if any(int(v) == 1 for v in expand):
            raise ValueError(f"{type(self).__name__}: expand ratio 1 is not an option of these spaces")
        self.widths = self._widths()
        n_blocks = sum(self.stage_blocks)
        n_elastic = sum(1 for b in self.stage_blocks if b > 1)
        super().__init__(self._build, name=type(self).__name__,
                         ks=[Choice(ks) for _ in range(n_blocks)], e=[Choice(expand) for _ in range(n_blocks)],
                         d=[Choice(depth) for _ in range(n_elastic)], r=Choice(resolutions))

    def _widths(self):
        return [make_divisible(w * self.width_mult, 8) for w in self.base_widths]

    def _blocks(self, ks, e, d):
        w = self.widths
        first_act = self.acts[0]
        blocks = [_mb_block(w[0], w[1], 3, 1, 1, None, first_act, False, w[0] == w[1] and self.kind == "MobileNetV3")]
        cin, b, elastic = w[1], 0, 0
        for s, n in enumerate(self.stage_blocks):
            cout = w[2 + s]
            depth = d[elastic] if n > 1 else 1
            elastic += n > 1
            for j in range(n):
                when = None if j == 0 else (depth.map(lambda v, j=j: int(v > j)) if isinstance(depth, Choice)
                                            else int(depth > j))
                if when == 0 and not isinstance(when, Choice):
                    b += 1
                    continue
                mid = e[b].map(lambda r, c=cin: make_divisible(round(c * r), 8)) if isinstance(e[b], Choice) \
                    else make_divisible(round(cin * e[b]), 8)
                blocks.append(_mb_block(cin, cout, ks[b], self.strides[s] if j == 0 else 1, e[b], mid,
                                        self.acts[1 + s], self.se[s], j > 0, when))
                cin, b = cout, b + 1
        return blocks

    def net_config(self, candidate):
        """The candidate's sub-network as OFA's ``net.config`` dict (``from_ofa_config`` reads it)."""
        v = self.values(candidate)
        return self._config(v["ks"], v["e"], v["d"])

    def _build(self, ks, e, d, r):
        return from_ofa_config(self._config(ks, e, d), r)

    def arch_dict(self, candidate):
        """The candidate as OFA's arch dict ``{'ks': [...], 'e': [...], 'd': [...], 'r': [r]}``."""
        v = self.values(candidate)
        return {"ks": v["ks"], "e": v["e"], "d": v["d"], "r": [v["r"]]}


class OFAMobileNetV3(_OFASpace):
    """Once-for-All's MobileNetV3 space (width_mult 1.0 or 1.2 as released): kernel {3,5,7},
    expand {3,4,6} for each of 20 blocks, depth {2,3,4} for each of 5 stages, resolution
    128..224 step 4. See the module docstring."""

    kind = "MobileNetV3"
    base_widths = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
    stage_blocks = (4, 4, 4, 4, 4)
    strides = (2, 2, 2, 1, 2)
    acts = ("relu", "relu", "relu", "h_swish", "h_swish", "h_swish")
    se = (False, True, False, True, True)

    def __init__(self, width_mult=1.0, ks=(3, 5, 7), expand=(3, 4, 6), depth=(2, 3, 4), resolutions=RESOLUTIONS,
                 num_classes=1000, dropout_rate=0.1):
        super().__init__(width_mult, ks, expand, depth, resolutions, num_classes, dropout_rate)

    def _config(self, ks, e, d):
        w = self.widths
        return {"name": "MobileNetV3", "first_conv": _conv(3, w[0], 3, 2, "h_swish"),
                "blocks": self._blocks(ks, e, d),
                "final_expand_layer": _conv(w[6], w[7], 1, 1, "h_swish"),
                "feature_mix_layer": _conv(w[7], w[8], 1, 1, "h_swish", use_bn=False),
                "classifier": {"name": "LinearLayer", "in_features": w[8], "out_features": self.num_classes,
                               "bias": True, "use_bn": False, "act_func": None, "dropout_rate": self.dropout_rate}}


class OFAProxylessNAS(_OFASpace):
    """Once-for-All's ProxylessNAS space (width_mult 1.3 as released): kernel {3,5,7}, expand
    {3,4,6} for each of 21 blocks, depth {2,3,4} for the first 5 stages (the last has one block),
    resolution 128..224 step 4. See the module docstring."""

    kind = "ProxylessNASNets"
    base_widths = (32, 16, 24, 40, 80, 96, 192, 320, 1280)
    stage_blocks = (4, 4, 4, 4, 4, 1)
    strides = (2, 2, 2, 1, 2, 1)
    acts = ("relu6",) * 7
    se = (False,) * 6

    def __init__(self, width_mult=1.3, ks=(3, 5, 7), expand=(3, 4, 6), depth=(2, 3, 4), resolutions=RESOLUTIONS,
                 num_classes=1000, dropout_rate=0.0):
        super().__init__(width_mult, ks, expand, depth, resolutions, num_classes, dropout_rate)

    def _widths(self):
        w = super()._widths()
        if self.width_mult <= 1.0:  # OFAProxylessNASNets: last_channel = 1280 unless width_mult > 1
            w[-1] = 1280
        return w

    def _config(self, ks, e, d):
        w = self.widths
        return {"name": "ProxylessNASNets", "first_conv": _conv(3, w[0], 3, 2, "relu6"),
                "blocks": self._blocks(ks, e, d),
                "feature_mix_layer": _conv(w[7], w[8], 1, 1, "relu6"),
                "classifier": {"name": "LinearLayer", "in_features": w[8], "out_features": self.num_classes,
                               "bias": True, "use_bn": False, "act_func": None, "dropout_rate": self.dropout_rate}}
