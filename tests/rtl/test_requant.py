"""The requant unit in RTL against quant.fixedpoint.requantize (the one definition), on random and
edge values: saturation, negative ties, left shifts, power-of-two multipliers, zero points, ReLU clamps."""
import numpy as np

from quant.fixedpoint import quantize_multiplier, requantize
from rtl.simulate import run_requant

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _block(rng, n, zp, qmin, qmax, acc, bias, m0, shift) -> dict:
    def full(v):
        return np.broadcast_to(np.asarray(v, np.int64), (n,)).copy()
    return {"acc": full(acc), "bias": full(bias), "m0": full(m0), "shift": full(shift),
            "zero_point": full(zp), "qmin": full(qmin), "qmax": full(qmax)}


def vectors(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = 300
    real = np.exp(rng.uniform(np.log(1e-6), np.log(0.9), n))  # requant scales of real layers
    m0, shift = np.array([quantize_multiplier(float(r)) for r in real]).T
    blocks = [
        # typical: accumulators a real layer produces, scales from quantize_multiplier
        _block(rng, n, rng.integers(-128, 128, n), -128, 127, rng.integers(-(1 << 20), 1 << 20, n),
               rng.integers(-(1 << 16), 1 << 16, n), m0, shift),
        # fused ReLU (qmin = zero point) and ReLU6-style upper clamps
        _block(rng, n, -128, -128, rng.integers(-60, 128, n), rng.integers(-(1 << 18), 1 << 18, n),
               0, m0, shift),
        # exact ties: SRDHM(acc, 2^30) = acc / 2, then / 2^4 lands on .5; gemmlowp rounds half away
        # from zero, negatives included
        _block(rng, n, 0, -128, 127, (2 * rng.integers(-100, 100, n) + 1) << 4, 0, 1 << 30, 4),
        # left shifts (multipliers > 1), saturating at int32 before the multiply
        _block(rng, n, rng.integers(-10, 10, n), -128, 127, rng.integers(-(1 << 12), 1 << 12, n), 0,
               rng.integers(1 << 30, 1 << 31, n), rng.integers(-20, 0, n)),
        # saturation of the int8 output and extreme accumulators
        _block(rng, 8, 5, -128, 127, [INT32_MIN, INT32_MAX, INT32_MIN + 1, -1, 0, 1, 1 << 30, -(1 << 30)],
               0, INT32_MAX, [0, 0, 0, 0, 0, 0, -1, -1]),
        # right shifts past the pipeline's 33-bit shifter (up to the verifier's 62) and the widest left
        # shifts, on extreme accumulators: the clamped shift amounts must give what the full ones give
        _block(rng, n, rng.integers(-128, 128, n), -128, 127,
               np.clip(rng.choice([INT32_MIN, INT32_MAX, -1, 1, 0, -(1 << 30)], n) + rng.integers(-3, 4, n),
                       INT32_MIN, INT32_MAX), 0,
               rng.integers(0, 1 << 31, n), rng.choice([-31, -30, -1, 30, 31, 32, 33, 34, 40, 62], n)),
        # power-of-two mode (m0 = 2^30: a pure shifter) and m0 = 0
        _block(rng, n, rng.integers(-128, 128, n), -128, 127, rng.integers(-(1 << 24), 1 << 24, n), 0,
               rng.choice([0, 1 << 30], n), rng.integers(0, 31, n)),
    ]
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def reference(v: dict) -> np.ndarray:
    out = np.empty(len(v["acc"]), np.int64)
    for i in range(len(out)):
        out[i] = requantize(np.int64(v["acc"][i] + v["bias"][i]), v["m0"][i], v["shift"][i],
                            int(v["zero_point"][i]), int(v["qmin"][i]), int(v["qmax"][i]))
    return out


def test_requant_unit_equals_quant_fixed_point(simulator, rtl_build):
    v = vectors()
    expected = reference(v)
    assert len(set(expected.tolist())) > 200  # the vectors exercise the whole int8 range, not just clamps
    got = run_requant(v, simulator, rtl_build)
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, {k: v[k][bad[:3]].tolist() for k in v} | {"rtl": got[bad[:3]].tolist(),
                                                                      "quant": expected[bad[:3]].tolist()}
