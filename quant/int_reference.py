"""The integer executor's GEMMs and requantization written plainly in int64 numpy (as the executor
was before the BLAS kernels of quant.kernels): the reference the fast kernels are held bit-identical
to, in tests and in benchmarks/int_exec_speed.py.

    with plain_kernels():
        y = run_int(qgraph, x_q)     # the slow, obviously exact executor
"""
from __future__ import annotations

import contextlib

import numpy as np

from quant import int_exec
from quant.fixedpoint import requantize
from quant.kernels import conv_gemm, im2col


def _conv_run(self, node, x):
    q, a = node.quant, node.attrs
    cols = im2col(x, a, node.quant.in_zero_points[0]).astype(np.int64)
    acc = conv_gemm(cols, q.weight, a.groups, node.out_shape[2:]) + q.acc_bias.reshape(1, -1, 1, 1)
    int_exec.check_accumulator(node, acc, self.acc_type)
    return int_exec.apply_requant(acc, q.requant)


def _dense_run(self, node, x):
    acc = x.astype(np.int64) @ node.quant.weight.astype(np.int64).T + node.quant.acc_bias
    int_exec.check_accumulator(node, acc, self.acc_type)
    return int_exec.apply_requant(acc, node.quant.requant)


def _apply_requant(acc, rq):
    return requantize(acc, rq.m0, rq.shift, rq.zero_point, rq.qmin, rq.qmax)


@contextlib.contextmanager
def plain_kernels():
    """Within the block, run_int computes GEMMs in int64 and requantizes with fixedpoint.requantize."""
    saved = int_exec.ConvKernel._run, int_exec.DenseKernel._run, int_exec.apply_requant
    int_exec.ConvKernel._run, int_exec.DenseKernel._run, int_exec.apply_requant = _conv_run, _dense_run, _apply_requant
    try:
        yield
    finally:
        int_exec.ConvKernel._run, int_exec.DenseKernel._run, int_exec.apply_requant = saved
