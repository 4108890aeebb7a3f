"""Memory bounds for running a graph: every executor sizes its batches from these numbers
(shape arithmetic only: nothing is allocated to find out), and a model whose single image
would not fit is refused up front with the size it needs, never run into the OOM killer.

HWSIM_MAX_RUN_GIB (default 4) sets the budget of one batch of an executor."""
from __future__ import annotations

import math
import os

from quant.errors import DataError
from quant.ir import Graph, Node, Op

WORD_BYTES = 8  # the integer executor widens to int64 and im2col copies: the worst case per value


def budget_bytes() -> int:
    try:
        gib = float(os.environ.get("HWSIM_MAX_RUN_GIB", "4"))
    except ValueError:
        gib = 4.0
    return int(max(gib, 0.001) * (1 << 30)) if math.isfinite(gib) else 4 << 30


def _node_bytes(node: Node) -> int:
    """Transient bytes of one node per image: inputs, output, and im2col's expanded matrix for a conv."""
    values = sum(math.prod(s[1:]) for s in node.in_shapes) + math.prod(node.out_shape[1:])
    if node.op is Op.CONV:
        values += math.prod(node.out_shape[2:]) * math.prod(node.weight.shape[1:]) * node.attrs.groups * 2
    return values * WORD_BYTES


def image_bytes(graph: Graph, keep_all: bool = True) -> int:
    """Peak bytes one image needs in an executor; keep_all = every intermediate tensor kept (calibration)."""
    peak = max((_node_bytes(n) for n in graph.nodes), default=0)
    kept = sum(math.prod(n.out_shape[1:]) for n in graph.nodes) * 4 if keep_all else 0
    return peak + kept + math.prod(graph.input_shape[1:]) * 4


def fitting_batch(graph: Graph, wanted: int, keep_all: bool = True) -> int:
    """The largest batch <= wanted within the budget; refuses a model whose one image does not fit."""
    per_image, budget = image_bytes(graph, keep_all), budget_bytes()
    if per_image > budget:
        raise DataError(f"running {graph.name!r} needs about {per_image / 2**30:.1f} GiB per image, past the "
                        f"{budget / 2**30:.1f} GiB budget (HWSIM_MAX_RUN_GIB raises it)")
    return max(1, min(wanted, budget // max(per_image, 1)))
