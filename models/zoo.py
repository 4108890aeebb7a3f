"""Model zoo: classic CNNs built in PyTorch and exported to ONNX on demand.

Random weights (seeded): for architecture work (layer tables, mapping, cycles),
not accuracy. Nothing here is downloaded and nothing big is committed.

    python models/zoo.py vgg16 --out /tmp/zoo            # writes /tmp/zoo/vgg16.onnx
    python models/zoo.py all --out /tmp/zoo --exporter legacy
"""
from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


def lenet5() -> nn.Module:
    """The shipped variant: ReLU + max-pool, C1 padded for 28x28 input."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def lenet5_classic() -> nn.Module:
    """LeCun et al. 1998 as in the seed table: 32x32 input, tanh, average pooling."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
        nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


def alexnet() -> nn.Module:
    """AlexNet (one-tower variant as in the seed: 227x227x3, CONV1 96@11x11 s4)."""
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))


def vgg16() -> nn.Module:
    """VGG-16 (configuration D), 224x224x3, no batch norm, no softmax."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
            c_in = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 1000))


class _Basic(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class _Bottleneck(nn.Module):
    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        c_out = width * 4
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def _resnet(block: type, blocks: tuple[int, ...], expansion: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                               nn.MaxPool2d(3, 2, 1)]
    c_in = 64
    for stage, count in enumerate(blocks):
        width = 64 * 2 ** stage
        for i in range(count):
            layers.append(block(c_in, width, 2 if i == 0 and stage > 0 else 1))
            c_in = width * expansion
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1000))


def resnet18() -> nn.Module:
    return _resnet(_Basic, (2, 2, 2, 2), 1)


def resnet50() -> nn.Module:
    return _resnet(_Bottleneck, (3, 4, 6, 3), 4)


def mobilenet_v1() -> nn.Module:
    """MobileNet-v1 (width 1.0, 224x224): depthwise-separable blocks, ReLU6."""
    def dw_block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in), nn.ReLU6(),
                nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU6()]
    cfg = ((32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
           *[(512, 512, 1)] * 5, (512, 1024, 2), (1024, 1024, 1))
    layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
    for c_in, c_out, stride in cfg:
        layers += dw_block(c_in, c_out, stride)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000))


def _cbr(c_in: int, c_out: int, k: int | tuple[int, int] = 1, stride: int = 1, padding: int | tuple[int, int] = 0,
         groups: int = 1, act: type[nn.Module] | None = nn.ReLU, eps: float = 1e-5) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ activation): the unit most models below are built of."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, padding, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out, eps=eps)]
    return nn.Sequential(*layers, act()) if act is not None else nn.Sequential(*layers)


def _div8(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of 8, never below 90 % of v (the MobileNet/EfficientNet rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class _Inception(nn.Module):
    """GoogLeNet inception module: 1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 maxpool s1 p1 -> 1x1, concatenated."""

    def __init__(self, c_in: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int):
        super().__init__()
        self.b1 = _cbr(c_in, c1)
        self.b3 = nn.Sequential(_cbr(c_in, c3r), _cbr(c3r, c3, 3, padding=1))
        self.b5 = nn.Sequential(_cbr(c_in, c5r), _cbr(c5r, c5, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), _cbr(c_in, pool))
        self.c_out = c1 + c3 + c5 + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


def googlenet() -> nn.Module:
    """GoogLeNet / Inception v1, Szegedy et al. 2015 ("Going deeper with convolutions"), table 1, 224x224.

    BatchNorm after every conv instead of LocalResponseNorm; no auxiliary classifiers; the 5x5
    branch really is 5x5 (as in the paper). Max-pools use padding 1 for the table's 112/56/28/14/7."""
    table = (("3a", 192, 64, 96, 128, 16, 32, 32), ("3b", 256, 128, 128, 192, 32, 96, 64), "M",
             ("4a", 480, 192, 96, 208, 16, 48, 64), ("4b", 512, 160, 112, 224, 24, 64, 64),
             ("4c", 512, 128, 128, 256, 24, 64, 64), ("4d", 512, 112, 144, 288, 32, 64, 64),
             ("4e", 528, 256, 160, 320, 32, 128, 128), "M",
             ("5a", 832, 256, 160, 320, 32, 128, 128), ("5b", 832, 384, 192, 384, 48, 128, 128))
    layers: list[nn.Module] = [_cbr(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, 1), _cbr(64, 64), _cbr(64, 192, 3, padding=1),
                               nn.MaxPool2d(3, 2, 1)]
    layers += [nn.MaxPool2d(3, 2, 1) if row == "M" else _Inception(*row[1:]) for row in table]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(1024, 1000))


class _Branches(nn.Module):
    """Parallel branches concatenated on channels (Inception v3's modules)."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class _SplitTail(nn.Module):
    """Inception v3 module E's fan-out: one stem, then 1x3 and 3x1 convs concatenated."""

    def __init__(self, stem: nn.Module, c: int, c_out: int):
        super().__init__()
        self.stem = stem
        self.a = _cbr(c, c_out, (1, 3), padding=(0, 1), eps=1e-3)
        self.b = _cbr(c, c_out, (3, 1), padding=(1, 0), eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        return torch.cat([self.a(y), self.b(y)], 1)


def inception_v3() -> nn.Module:
    """Inception v3, Szegedy et al. 2016 ("Rethinking the Inception architecture"), table 1 / figs 5-7, 299x299.

    Stem, 3x module A (35x35), reduction B, 4x module C (factorized 1x7/7x1, 17x17), reduction D,
    2x module E (8x8, expanded 1x3/3x1); channel counts as in the reference implementation; no aux head."""
    def c(c_in: int, c_out: int, k: int | tuple[int, int] = 1, s: int = 1, p: int | tuple[int, int] = 0):
        return _cbr(c_in, c_out, k, s, p, eps=1e-3)

    def pool_proj(c_in: int, c_out: int) -> nn.Module:
        return nn.Sequential(nn.AvgPool2d(3, 1, 1), c(c_in, c_out))

    def a(c_in: int, pool: int) -> nn.Module:
        return _Branches(c(c_in, 64), nn.Sequential(c(c_in, 48), c(48, 64, 5, p=2)),
                         nn.Sequential(c(c_in, 64), c(64, 96, 3, p=1), c(96, 96, 3, p=1)), pool_proj(c_in, pool))

    def b(c_in: int) -> nn.Module:
        return _Branches(c(c_in, 384, 3, 2), nn.Sequential(c(c_in, 64), c(64, 96, 3, p=1), c(96, 96, 3, 2)),
                         nn.MaxPool2d(3, 2))

    def c7(c_in: int, m: int) -> nn.Module:
        return _Branches(c(c_in, 192),
                         nn.Sequential(c(c_in, m), c(m, m, (1, 7), p=(0, 3)), c(m, 192, (7, 1), p=(3, 0))),
                         nn.Sequential(c(c_in, m), c(m, m, (7, 1), p=(3, 0)), c(m, m, (1, 7), p=(0, 3)),
                                       c(m, m, (7, 1), p=(3, 0)), c(m, 192, (1, 7), p=(0, 3))),
                         pool_proj(c_in, 192))

    def d(c_in: int) -> nn.Module:
        return _Branches(nn.Sequential(c(c_in, 192), c(192, 320, 3, 2)),
                         nn.Sequential(c(c_in, 192), c(192, 192, (1, 7), p=(0, 3)), c(192, 192, (7, 1), p=(3, 0)),
                                       c(192, 192, 3, 2)),
                         nn.MaxPool2d(3, 2))

    def e(c_in: int) -> nn.Module:
        return _Branches(c(c_in, 320), _SplitTail(c(c_in, 384), 384, 384),
                         _SplitTail(nn.Sequential(c(c_in, 448), c(448, 384, 3, p=1)), 384, 384), pool_proj(c_in, 192))

    stem = [c(3, 32, 3, 2), c(32, 32, 3), c(32, 64, 3, p=1), nn.MaxPool2d(3, 2), c(64, 80), c(80, 192, 3),
            nn.MaxPool2d(3, 2)]
    body = [a(192, 32), a(256, 64), a(288, 64), b(288), c7(768, 128), c7(768, 160), c7(768, 160), c7(768, 192),
            d(768), e(1280), e(2048)]
    return nn.Sequential(*stem, *body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(2048, 1000))


class _Fire(nn.Module):
    """SqueezeNet fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def __init__(self, c_in: int, squeeze: int, e1: int, e3: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(c_in, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, e1, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, e3, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], 1)


def squeezenet1_0() -> nn.Module:
    """SqueezeNet v1.0, Iandola et al. 2016, table 1 (no bypass), 224x224: 109 -> 54 -> 27 -> 13 with
    ceil-mode max-pools (Caffe's rounding); conv10 classifier + global average pool."""
    return nn.Sequential(
        nn.Conv2d(3, 96, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        _Fire(96, 16, 64, 64), _Fire(128, 16, 64, 64), _Fire(128, 32, 128, 128), nn.MaxPool2d(3, 2, ceil_mode=True),
        _Fire(256, 32, 128, 128), _Fire(256, 48, 192, 192), _Fire(384, 48, 192, 192), _Fire(384, 64, 256, 256),
        nn.MaxPool2d(3, 2, ceil_mode=True), _Fire(512, 64, 256, 256),
        nn.Dropout(0.5), nn.Conv2d(512, 1000, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class _DenseLayer(nn.Module):
    """BN-ReLU-1x1 (4k) -BN-ReLU-3x3 (k), its k new channels concatenated to its input."""

    def __init__(self, c_in: int, growth: int):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, 4 * growth, 1, bias=False),
                                  nn.BatchNorm2d(4 * growth), nn.ReLU(),
                                  nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


def densenet121() -> nn.Module:
    """DenseNet-121, Huang et al. 2017, table 1 (DenseNet-BC, growth 32, compression 0.5), 224x224."""
    growth, c = 32, 64
    layers: list[nn.Module] = [_cbr(3, c, 7, 2, 3), nn.MaxPool2d(3, 2, 1)]
    for i, count in enumerate((6, 12, 24, 16)):
        for _ in range(count):
            layers.append(_DenseLayer(c, growth))
            c += growth
        if i < 3:  # transition: BN-ReLU-1x1 conv halving the channels, 2x2 average pool
            layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)]
            c //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(c, 1000))


class _SE(nn.Module):
    """Squeeze-excitation: global avgpool -> 1x1 conv -> act -> 1x1 conv -> gate -> channel-wise multiply."""

    def __init__(self, c: int, squeeze: int, act: type[nn.Module] = nn.SiLU, gate: type[nn.Module] = nn.Sigmoid):
        super().__init__()
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, squeeze, 1), act(),
                                   nn.Conv2d(squeeze, c, 1), gate())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale(x)


class _MBConv(nn.Module):
    """Inverted residual (MobileNet-v2/v3, EfficientNet, MnasNet): optional 1x1 expand, kxk depthwise,
    optional SE, linear 1x1 projection; identity skip when the shape is kept."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, k: int, stride: int, act: type[nn.Module],
                 se: nn.Module | None = None):
        super().__init__()
        layers: list[nn.Module] = [] if c_mid == c_in else [_cbr(c_in, c_mid, act=act)]
        layers.append(_cbr(c_mid, c_mid, k, stride, k // 2, groups=c_mid, act=act))
        if se is not None:
            layers.append(se)
        layers.append(_cbr(c_mid, c_out, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def efficientnet_b0() -> nn.Module:
    """EfficientNet-B0, Tan & Le 2019, table 1, 224x224: MBConv with SiLU and SE (squeeze to a quarter of
    the block's input channels); no stochastic depth, dropout is a no-op at eval."""
    stages = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
              (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))  # expand ratio, kernel, first stride, channels, repeats
    layers: list[nn.Module] = [_cbr(3, 32, 3, 2, 1, act=nn.SiLU)]
    c = 32
    for t, k, s, c_out, n in stages:
        for i in range(n):
            layers.append(_MBConv(c, c * t, c_out, k, s if i == 0 else 1, nn.SiLU, _SE(c * t, max(1, c // 4))))
            c = c_out
    return nn.Sequential(*layers, _cbr(c, 1280, act=nn.SiLU), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(1280, 1000))


def mobilenet_v2() -> nn.Module:
    """MobileNet-v2 (width 1.0), Sandler et al. 2018, table 2, 224x224: inverted residuals, ReLU6."""
    stages = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
              (6, 320, 1, 1))  # t, c, n, s as in the paper
    layers: list[nn.Module] = [_cbr(3, 32, 3, 2, 1, act=nn.ReLU6)]
    c = 32
    for t, c_out, n, s in stages:
        for i in range(n):
            layers.append(_MBConv(c, c * t, c_out, 3, s if i == 0 else 1, nn.ReLU6))
            c = c_out
    return nn.Sequential(*layers, _cbr(c, 1280, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(1280, 1000))


def mobilenet_v3_small() -> nn.Module:
    """MobileNet-v3-Small, Howard et al. 2019, table 2, 224x224: hardswish (HS) / ReLU (RE), SE with
    hardsigmoid (squeeze to exp/4 rounded to 8). As in the reference implementation, the last 1x1
    conv (576) has no SE; then pool, 1x1 conv 1024 (no BN) + HS, linear 1000."""
    hs, re = nn.Hardswish, nn.ReLU
    table = ((3, 16, 16, True, re, 2), (3, 72, 24, False, re, 2), (3, 88, 24, False, re, 1),
             (5, 96, 40, True, hs, 2), (5, 240, 40, True, hs, 1), (5, 240, 40, True, hs, 1),
             (5, 120, 48, True, hs, 1), (5, 144, 48, True, hs, 1), (5, 288, 96, True, hs, 2),
             (5, 576, 96, True, hs, 1), (5, 576, 96, True, hs, 1))  # kernel, exp size, out, SE, NL, stride
    layers: list[nn.Module] = [_cbr(3, 16, 3, 2, 1, act=hs)]
    c = 16
    for k, exp, c_out, se, act, s in table:
        gate = _SE(exp, _div8(exp / 4), nn.ReLU, nn.Hardsigmoid) if se else None
        layers.append(_MBConv(c, exp, c_out, k, s, act, gate))
        c = c_out
    return nn.Sequential(*layers, _cbr(c, 576, act=hs), nn.AdaptiveAvgPool2d(1), nn.Conv2d(576, 1024, 1), hs(),
                         nn.Flatten(), nn.Dropout(0.2), nn.Linear(1024, 1000))


def _shuffle(x: torch.Tensor) -> torch.Tensor:
    """Channel shuffle with 2 groups."""
    n, c, h, w = x.shape
    return x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class _ShuffleUnit(nn.Module):
    """ShuffleNet-v2 unit (Ma et al. 2018, fig. 3c/d): stride 1 splits the channels in half and transforms
    one half; stride 2 transforms two copies of the input; concatenate, shuffle."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        half = c_out // 2
        self.stride = stride
        c_b = c_in if stride == 2 else half
        self.right = nn.Sequential(_cbr(c_b, half), _cbr(half, half, 3, stride, 1, groups=half, act=None),
                                   _cbr(half, half))
        self.left = nn.Sequential(_cbr(c_in, c_in, 3, stride, 1, groups=c_in, act=None), _cbr(c_in, half)) \
            if stride == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.left is None:
            a, b = torch.chunk(x, 2, dim=1)
            out = torch.cat([a, self.right(b)], 1)
        else:
            out = torch.cat([self.left(x), self.right(x)], 1)
        return _shuffle(out)


def shufflenet_v2_x0_5() -> nn.Module:
    """ShuffleNet-v2 0.5x, Ma et al. 2018, table 5, 224x224: stages of 4/8/4 units, 48/96/192 channels."""
    layers: list[nn.Module] = [_cbr(3, 24, 3, 2, 1), nn.MaxPool2d(3, 2, 1)]
    c = 24
    for c_out, n in ((48, 4), (96, 8), (192, 4)):
        layers += [_ShuffleUnit(c if i == 0 else c_out, c_out, 2 if i == 0 else 1) for i in range(n)]
        c = c_out
    return nn.Sequential(*layers, _cbr(c, 1024), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000))


class _XBlock(nn.Module):
    """RegNet X block: 1x1, 3x3 group conv (stride), 1x1, each BN; projection skip on change; ReLU after add."""

    def __init__(self, c_in: int, c_out: int, stride: int, group_width: int):
        super().__init__()
        self.body = nn.Sequential(_cbr(c_in, c_out), _cbr(c_out, c_out, 3, stride, 1, groups=c_out // group_width),
                                  _cbr(c_out, c_out, act=None))
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else _cbr(c_in, c_out, 1, stride, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def regnetx_400mf() -> nn.Module:
    """RegNetX-400MF, Radosavovic et al. 2020 (appendix table), 224x224: depths 1/2/7/12, widths
    32/64/160/400, group width 16, bottleneck ratio 1, stride-2 first block per stage, stem 32."""
    layers: list[nn.Module] = [_cbr(3, 32, 3, 2, 1)]
    c = 32
    for depth, width in zip((1, 2, 7, 12), (32, 64, 160, 400), strict=True):
        for i in range(depth):
            layers.append(_XBlock(c, width, 2 if i == 0 else 1, 16))
            c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000))


def mnasnet0_5() -> nn.Module:
    """MnasNet-B1 (Tan et al. 2019, fig. 7) at depth multiplier 0.5 with torchvision's mnasnet0_5 widths
    16/8/16/24/40/48/96/160: sep-conv stem, six MBConv stacks (ReLU, no SE), 1x1 conv 1280."""
    d = [16, 8, 16, 24, 40, 48, 96, 160]
    assert d == [_div8(v * 0.5) for v in (32, 16, 24, 40, 80, 96, 192, 320)]
    layers: list[nn.Module] = [_cbr(3, d[0], 3, 2, 1), _cbr(d[0], d[0], 3, 1, 1, groups=d[0]),
                               _cbr(d[0], d[1], act=None)]
    stacks = ((3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1))  # k, s, t, n
    for j, (k, s, t, n) in enumerate(stacks):
        for i in range(n):
            c_in = d[j + 1] if i == 0 else d[j + 2]
            layers.append(_MBConv(c_in, c_in * t, d[j + 2], k, s if i == 0 else 1, nn.ReLU))
    return nn.Sequential(*layers, _cbr(d[7], 1280), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(1280, 1000))


def inception_block() -> nn.Module:
    """CI-sized: a 3x32x32 stem conv to 32 channels, one inception module with reduced widths
    (GoogLeNet 3a's shape: 1x1 | 1x1->3x3 | 1x1->5x5 | maxpool s1 -> 1x1), pool, linear 10."""
    block = _Inception(32, 16, 16, 24, 4, 8, 8)
    return nn.Sequential(_cbr(3, 32, 3, padding=1), block, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(block.c_out, 10))


def se_block() -> nn.Module:
    """CI-sized: a 3x32x32 stem, an EfficientNet MBConv with SE and SiLU (stride 2), a residual one, pool, linear 10."""
    return nn.Sequential(_cbr(3, 16, 3, padding=1, act=nn.SiLU),
                         _MBConv(16, 64, 24, 3, 2, nn.SiLU, _SE(64, 4)),
                         _MBConv(24, 96, 24, 5, 1, nn.SiLU, _SE(96, 6)),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))


class _UNetBlock(nn.Module):
    """An encoder-decoder step as in U-Net/FPN: pooled features upsampled (nearest, x2), concatenated
    with the skip, fused; LeakyReLU activations, a classifier head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.LeakyReLU(0.1))
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
                                  nn.LeakyReLU(0.1))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = nn.Sequential(nn.Conv2d(48, 16, 3, padding=1), nn.BatchNorm2d(16), nn.LeakyReLU(0.1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.stem(x)
        return self.head(self.fuse(torch.cat([self.up(self.down(skip)), skip], dim=1)))


def unet_block() -> nn.Module:
    """CI-sized (3x32x32): Resize (nearest upsampling), Concat of a skip, LeakyReLU."""
    return _UNetBlock()


def vgg_small_bn() -> nn.Module:
    """A CIFAR-sized VGG with BatchNorm (3x32x32): six 3x3 conv+BN+ReLU, three max-pools, two FC."""
    layers: list[nn.Module] = []
    c_in = 3
    for c_out, pool in ((32, False), (32, True), (64, False), (64, True), (128, False), (128, True)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2))
        c_in = c_out
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, 10))


ZOO: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "lenet5": (lenet5, (1, 28, 28)),
    "lenet5_classic": (lenet5_classic, (1, 32, 32)),
    "vgg_small_bn": (vgg_small_bn, (3, 32, 32)),
    "alexnet": (alexnet, (3, 227, 227)),
    "vgg16": (vgg16, (3, 224, 224)),
    "resnet18": (resnet18, (3, 224, 224)),
    "resnet50": (resnet50, (3, 224, 224)),
    "mobilenet_v1": (mobilenet_v1, (3, 224, 224)),
    "googlenet": (googlenet, (3, 224, 224)),
    "inception_v3": (inception_v3, (3, 299, 299)),
    "squeezenet1_0": (squeezenet1_0, (3, 224, 224)),
    "densenet121": (densenet121, (3, 224, 224)),
    "efficientnet_b0": (efficientnet_b0, (3, 224, 224)),
    "mobilenet_v2": (mobilenet_v2, (3, 224, 224)),
    "mobilenet_v3_small": (mobilenet_v3_small, (3, 224, 224)),
    "shufflenet_v2_x0_5": (shufflenet_v2_x0_5, (3, 224, 224)),
    "regnetx_400mf": (regnetx_400mf, (3, 224, 224)),
    "mnasnet0_5": (mnasnet0_5, (3, 224, 224)),
    "inception_block": (inception_block, (3, 32, 32)),
    "se_block": (se_block, (3, 32, 32)),
    "unet_block": (unet_block, (3, 32, 32)),
}


def build(name: str, out_dir: Path | str, exporter: str = "dynamo", seed: int = 0) -> Path:
    """Export zoo model `name` to out_dir/name.onnx (opset 18 dynamo, or opset 13 legacy with BatchNorm kept)."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(ZOO)}")
    factory, chw = ZOO[name]
    torch.manual_seed(seed)
    model = factory().eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so folding is really exercised
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = Path(out_dir) / f"{name}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.rand(1, *chw)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=18, external_data=False,
                              input_names=["input"], verbose=False, optimize=True)
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=13, input_names=["input"],
                              do_constant_folding=False, dynamic_axes={"input": {0: "batch"}})
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Export zoo CNNs to ONNX (random weights).")
    p.add_argument("name", choices=[*ZOO, "all"])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--exporter", choices=("dynamo", "legacy"), default="dynamo")
    args = p.parse_args(argv)
    for name in ZOO if args.name == "all" else [args.name]:
        print(build(name, args.out, args.exporter))
    return 0


if __name__ == "__main__":
    sys.exit(main())
