"""Independent MAC count of a PyTorch module, from forward hooks (no ONNX, no hwsim IR).

Counted per forward pass of the given input (use batch 1 for per-image MACs):
- nn.Conv2d: output elements x in_channels/groups x kh x kw
- nn.Linear: in_features x out_features per output row
- nn.ConvTranspose2d: input elements x out_channels/groups x kh x kw
Everything else (BatchNorm, pooling, activations, elementwise Mul/Add) counts 0.
"""
from __future__ import annotations

import torch
from torch import nn


def layer_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        return inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        rows = output.numel() // module.out_features
        return rows * module.in_features * module.out_features
    return 0


def per_layer_macs(model: nn.Module, x: torch.Tensor) -> list[tuple[str, str, int]]:
    """(module name, class name, MACs) of every Conv2d/ConvTranspose2d/Linear call, in call order."""
    rows: list[tuple[str, str, int]] = []
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: rows.append((name, type(mod).__name__, layer_macs(mod, inp, out)))))
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return rows


def count_macs(model: nn.Module, chw: tuple[int, ...]) -> int:
    """MACs per image of `model` on one input of shape (1, *chw)."""
    return sum(m for _, _, m in per_layer_macs(model, torch.zeros(1, *chw)))


def _self_check() -> None:
    """Hand-counted cases: conv, grouped conv, linear on a 2-D and 3-D input, transposed conv."""
    assert layer_macs(nn.Conv2d(4, 8, 3, groups=2), (), torch.zeros(1, 8, 5, 5)) == 8 * 25 * 2 * 9
    assert layer_macs(nn.Linear(6, 7), (), torch.zeros(3, 7)) == 3 * 42
    assert layer_macs(nn.Linear(6, 7), (), torch.zeros(2, 3, 7)) == 6 * 42
    assert layer_macs(nn.ConvTranspose2d(4, 6, 2, groups=2), (torch.zeros(1, 4, 3, 3),), torch.zeros(0)) == \
        36 * 3 * 4


if __name__ == "__main__":
    _self_check()
    print("ok")
