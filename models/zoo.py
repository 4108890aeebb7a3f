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


ZOO: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "lenet5": (lenet5, (1, 28, 28)),
    "lenet5_classic": (lenet5_classic, (1, 32, 32)),
    "alexnet": (alexnet, (3, 227, 227)),
    "vgg16": (vgg16, (3, 224, 224)),
    "resnet18": (resnet18, (3, 224, 224)),
    "resnet50": (resnet50, (3, 224, 224)),
    "mobilenet_v1": (mobilenet_v1, (3, 224, 224)),
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
