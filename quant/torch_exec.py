"""The float reference in PyTorch: the IR run with torch ops on CUDA when available,
else on the CPU. Same semantics as quant.float_exec (tests hold the two equal to
float32 rounding); this is what the report times and calls "the float GPU reference".
torch is imported lazily: nothing else in quant needs it."""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import numpy as np

from quant.ir import ActKind, Clamp, Graph, Node, Op, PoolAttrs
from quant.kernels import pool_counts


@dataclass(frozen=True)
class TorchDevice:
    name: str  # "cuda" or "cpu"
    description: str  # "NVIDIA H100 80GB HBM3" or the CPU model
    torch_version: str
    threads: int

    def to_dict(self) -> dict:
        return {"device": self.name, "description": self.description, "torch": self.torch_version,
                "threads": self.threads}


def pick_device(prefer: str = "auto") -> TorchDevice:
    """'auto' = CUDA when torch sees a GPU, else CPU; 'cpu' forces the CPU."""
    import torch
    use_cuda = prefer != "cpu" and torch.cuda.is_available()
    desc = torch.cuda.get_device_name(0) if use_cuda else _cpu_name()
    return TorchDevice("cuda" if use_cuda else "cpu", desc, torch.__version__, torch.get_num_threads())


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _clamp(x, act: Clamp | None):
    import torch
    return x if act is None else torch.clamp(x, act.lo, act.hi)


def _pad(x, pads: tuple[int, int, int, int], value: float):
    import torch.nn.functional as F
    top, left, bottom, right = pads
    return F.pad(x, (left, right, top, bottom), value=value) if any(pads) else x


def _symmetric(pads: tuple[int, int, int, int]) -> bool:
    top, left, bottom, right = pads
    return top == bottom and left == right


def _conv(node: Node, x, params):
    import torch.nn.functional as F
    a = node.attrs
    w, b = params[node.name]
    if _symmetric(a.pads):  # let the kernel pad (no copy)
        out = F.conv2d(x, w, b, stride=a.stride, padding=a.pads[:2], dilation=a.dilation, groups=a.groups)
    else:
        out = F.conv2d(_pad(x, a.pads, 0.0), w, b, stride=a.stride, dilation=a.dilation, groups=a.groups)
    return _clamp(out, a.act)


def _dense(node: Node, x, params):
    import torch.nn.functional as F
    w, b = params[node.name]
    return _clamp(F.linear(x, w, b), node.attrs.act)


def _affine(node: Node, x, params):
    w, b = params[node.name]
    shape = (1, -1, *[1] * (x.dim() - 2))
    out = x * w.reshape(shape)
    return _clamp(out if b is None else out + b.reshape(shape), node.attrs.act)


def _maxpool(node: Node, x, params):
    import torch.nn.functional as F
    a = node.attrs
    if _symmetric(a.pads) and 2 * a.pads[0] <= a.kernel[0] and 2 * a.pads[1] <= a.kernel[1]:
        # torch pads with -inf too, and its ceil_mode is ONNX's
        return F.max_pool2d(x, a.kernel, a.stride, padding=a.pads[:2], ceil_mode=a.ceil_mode)
    return F.max_pool2d(_pool_pad(x, a, float("-inf")), a.kernel, a.stride)


def _pool_pad(x, a: PoolAttrs, value: float):
    """x padded by the pool's pads plus the positions ceil_mode adds past the end pad."""
    top, left, bottom, right = a.pads
    eh, ew = a.extra_end(tuple(x.shape[2:]))
    return _pad(x, (top, left, bottom + eh, right + ew), value)


def _avgpool(node: Node, x, params):
    import torch
    import torch.nn.functional as F
    a = node.attrs
    sums = F.avg_pool2d(_pool_pad(x, a, 0.0), a.kernel, a.stride) * (a.kernel[0] * a.kernel[1])
    counts = torch.as_tensor(pool_counts(tuple(x.shape[2:]), a), dtype=x.dtype, device=x.device)
    return sums / counts


def _activation(node: Node, x, params):
    import torch
    kind = node.attrs.kind
    if kind is ActKind.TANH:
        return torch.tanh(x)
    if kind is ActKind.SIGMOID:
        return torch.sigmoid(x)
    a = node.attrs
    if kind is ActKind.HARD_SIGMOID:
        return torch.clamp(a.alpha * x + a.beta, 0.0, 1.0)
    if kind is ActKind.HARD_SWISH:
        return x * torch.clamp(x / 6.0 + 0.5, 0.0, 1.0)
    if kind is ActKind.SILU:
        return x * torch.sigmoid(x)
    if kind is ActKind.LEAKY_RELU:
        return torch.where(x >= 0, x, a.alpha * x)
    if kind is ActKind.PRELU:
        slope = torch.as_tensor(a.slope, dtype=x.dtype, device=x.device)
        slope = slope.reshape(-1, *[1] * (x.dim() - 2)) if len(a.slope) > 1 else slope
        return torch.where(x >= 0, x, slope * x)
    lo = max(a.lo, 0.0) if kind is ActKind.RELU else a.lo
    return torch.clamp(x, lo, a.hi)


def _zero_insert(node: Node, x, params):
    import torch
    sh, sw = node.attrs.stride
    n, c, h, w = x.shape
    out = torch.zeros((n, c, (h - 1) * sh + 1, (w - 1) * sw + 1), dtype=x.dtype, device=x.device)
    out[:, :, ::sh, ::sw] = x
    return out


TORCH_KERNELS = {
    Op.CONV: _conv,
    Op.DENSE: _dense,
    Op.MAXPOOL: _maxpool,
    Op.AVGPOOL: _avgpool,
    Op.GLOBAL_AVGPOOL: lambda n, x, p: x.mean(dim=(2, 3), keepdim=True),
    Op.ADD: lambda n, x, y, p: _clamp(x + y, n.attrs.act),
    Op.ACTIVATION: _activation,
    Op.FLATTEN: lambda n, x, p: x.reshape(x.shape[0], *n.out_shape[1:]),
    Op.SOFTMAX: lambda n, x, p: x.softmax(dim=1),
    Op.PAD: lambda n, x, p: _pad(x, n.attrs.pads, n.attrs.value),
    Op.CONCAT: lambda n, *xs: _concat(xs[:-1]),
    Op.MUL: lambda n, x, y, p: x * y,
    Op.SLICE: lambda n, x, p: x[:, n.attrs.start:n.attrs.stop],
    Op.SHUFFLE: lambda n, x, p: x[:, list(n.attrs.perm)],
    Op.RESIZE: lambda n, x, p: x[:, :, list(n.attrs.rows)][:, :, :, list(n.attrs.cols)],
    Op.ZERO_INSERT: _zero_insert,
    Op.AFFINE: _affine,
}


def _concat(xs):
    import torch
    return torch.cat(list(xs), dim=1)


class TorchModel:
    """A float graph with its weights on `device`, callable on numpy batches."""

    def __init__(self, graph: Graph, device: TorchDevice):
        import torch
        self.graph, self.device = graph, device
        dev = torch.device(device.name)
        self.params = {}
        for node in graph.nodes:
            if node.op in (Op.CONV, Op.DENSE, Op.AFFINE):
                w = torch.as_tensor(np.asarray(node.weight, dtype=np.float32), device=dev)
                b = None if node.bias is None else torch.as_tensor(np.asarray(node.bias, dtype=np.float32), device=dev)
                self.params[node.name] = (w, b)

    def forward(self, x, outputs: tuple[str, ...]):
        tensors = {self.graph.input_name: x}
        for node in self.graph.nodes:
            tensors[node.output] = TORCH_KERNELS[node.op](node, *(tensors[t] for t in node.inputs), self.params)
        return [tensors[name] for name in outputs]

    def run(self, x: np.ndarray, output: str | None = None, batch: int = 1000, progress=None) -> np.ndarray:
        """The float tensor `output` (default: the graph output) for numpy input x, in batches."""
        import torch
        name, out = output or self.graph.output, []
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                xb = torch.as_tensor(np.ascontiguousarray(x[start:start + batch], dtype=np.float32),
                                     device=self.device.name)
                out.append(self.forward(xb, (name,))[0].cpu().numpy())
                if progress:
                    progress(len(out[-1]))
        return np.concatenate(out)

    def time_inference(self, x: np.ndarray, batch: int, repeats: int, warmup: int = 3) -> list[float]:
        """Wall seconds of `repeats` forward passes on a resident batch (input already on the device)."""
        import torch
        reps = -(-batch // len(x))
        xb = torch.as_tensor(np.ascontiguousarray(np.concatenate([x] * reps)[:batch], dtype=np.float32),
                             device=self.device.name)
        cuda = self.device.name == "cuda"
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                if cuda:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                self.forward(xb, (self.graph.output,))
                if cuda:
                    torch.cuda.synchronize()
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
        return times
