"""Host side of the tile engine: one GEMM layer -> memory words and config registers, results -> arrays.

Pure numpy; the cocotb driver and the tests use it, the hardware is documented in rtl.engine.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from quant.errors import ConfigError
from rtl.params import BIAS_BITS, M0_BITS, SHIFT_BITS, ArrayParams, EngineParams


@dataclass(frozen=True)
class GemmJob:
    """One layer for the engine: A (G, M, K) int8, B (G, K, N) int8, per-channel requant (G*N entries)."""
    name: str
    a: np.ndarray
    b: np.ndarray
    bias: np.ndarray  # int32 per output channel
    m0: np.ndarray
    shift: np.ndarray
    zero_point: int
    qmin: int
    qmax: int

    @property
    def groups(self) -> int:
        return self.a.shape[0]

    @property
    def m(self) -> int:
        return self.a.shape[1]

    @property
    def k(self) -> int:
        return self.a.shape[2]

    @property
    def n(self) -> int:
        return self.b.shape[2]


def job_for(node, a: np.ndarray, b: np.ndarray) -> GemmJob:
    """The engine job of a quantized Conv/Dense node on its GEMM operands (one image's A, the weights B)."""
    rq = node.quant.requant
    return GemmJob(node.name, a, b, node.quant.acc_bias, rq.m0, rq.shift, rq.zero_point, rq.qmin, rq.qmax)


@dataclass(frozen=True)
class Words:
    """What the host writes: memory words (Python ints, lane 0 in the low bits) and config registers."""
    a: list[int]
    b: list[int]
    params: list[int]
    config: dict[str, int]  # the whole layer in one run
    live_lanes: list[int]  # per result word streamed back: the lanes holding output channels (the rest lie past N)
    runs: tuple[dict[str, int], ...] = ()  # the layer as the tiler's chunks (chunk_runs); empty: (config,)

    @property
    def run_configs(self) -> tuple[dict[str, int], ...]:
        return self.runs or (self.config,)

    @property
    def beats(self) -> int:
        """Result words the engine streams back."""
        return len(self.live_lanes)


def run_limit_cycles(c: dict[str, int]) -> int:
    """A generous bound on one run: every fold at its period plus fill and drain, doubled (the harness
    computes the same)."""
    folds = c["cfg_groups"] * c["cfg_row_tiles"] * c["cfg_col_tiles"]
    return 2 * (folds * (max(c["cfg_k"], c["cfg_m"]) + 512) + 1024)


def tiles(job: GemmJob, ap: ArrayParams) -> tuple[int, int]:
    """Row tiles (OS: of M; WS: of K) and column tiles (of N)."""
    return math.ceil((job.k if ap.ws else job.m) / ap.rows), math.ceil(job.n / ap.cols)


def needs(job: GemmJob, ap: ArrayParams, chunks=None) -> dict[str, int]:
    """Memory words the job occupies (a_depth, b_depth, out_depth, param_depth); WS with `chunks`
    (chunk_runs lays the A words out per K chunk): their A words."""
    rt, ct = tiles(job, ap)
    a_depth = job.groups * rt * (job.m if ap.ws else job.k)
    if ap.ws and chunks:
        a_depth = job.groups * job.m * sum(math.ceil(k / ap.rows) for _, k in {(s.k0, s.k) for s in chunks})
    return {"a_depth": a_depth, "b_depth": job.groups * ct * job.k,
            "out_depth": job.groups * ct * job.m, "param_depth": job.groups * job.n}


def engine_for(jobs: list[GemmJob], ap: ArrayParams, chunks: dict | None = None) -> EngineParams:
    """The smallest engine that holds every job (memories sized to the largest layer; `chunks`: per
    layer name, the tiler's steps it will run as)."""
    sizes = [needs(j, ap, (chunks or {}).get(j.name)) for j in jobs]
    for job in jobs:
        ap.check_reduction(job.k, job.name)
    return EngineParams(ap, **{key: max(s[key] for s in sizes) for key in sizes[0]})


def _pack(lanes: np.ndarray, bits: int) -> list[int]:
    """(words, lanes) signed ints -> one int per word, lane 0 in the low bits, two's complement per lane."""
    mask = (1 << bits) - 1
    vals = lanes.astype(np.int64) & mask
    out = []
    for row in vals.tolist():
        word = 0
        for lane, v in enumerate(row):
            word |= v << (lane * bits)
        out.append(word)
    return out


def unpack(word: int, lanes: int, bits: int) -> list[int]:
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    vals = [(word >> (lane * bits)) & mask for lane in range(lanes)]
    return [v - (1 << bits) if v >= half else v for v in vals]


def words(job: GemmJob, engine: EngineParams) -> Words:
    ap = engine.array
    R, C, D = ap.rows, ap.cols, ap.data_bits
    rt, ct = tiles(job, ap)
    for key, value in needs(job, ap).items():
        if value > getattr(engine, key):
            raise ConfigError(f"{job.name}: needs {value} words of {key.removesuffix('_depth')} memory; "
                              f"the engine has {getattr(engine, key)}")
    g, m, k, n = job.groups, job.m, job.k, job.n
    a_words = _ws_a_words(job.a, R) if ap.ws else _os_a_words(job.a, R)
    b = np.zeros((g, k, ct * C), np.int64)
    b[:, :, :n] = job.b
    b_words = b.reshape(g, k, ct, C).transpose(0, 2, 1, 3).reshape(-1, C)  # word (g, ct, t), lane j
    shift = np.broadcast_to(np.ravel(job.shift), (g * n,)).astype(np.int64)
    m0 = np.broadcast_to(np.ravel(job.m0), (g * n,)).astype(np.int64)
    if np.any((m0 < 0) | (m0 >= 1 << 31)) or np.any((shift < -31) | (shift > 62)):
        raise ConfigError(f"{job.name}: requant multiplier outside the unit's range (m0 in [0, 2^31), shift -31..62)")
    bias = np.broadcast_to(np.ravel(job.bias), (g * n,)).astype(np.int64)
    params = [((int(s) & 0xFF) << (BIAS_BITS + M0_BITS)) | (int(mm) << BIAS_BITS) | (int(bb) & 0xFFFFFFFF)
              for bb, mm, s in zip(bias, m0, shift, strict=True)]
    assert SHIFT_BITS == 8 and BIAS_BITS == 32
    config = {"cfg_m": m, "cfg_k": k, "cfg_n": n, "cfg_groups": g, "cfg_row_tiles": rt, "cfg_col_tiles": ct,
              "cfg_zp": job.zero_point, "cfg_qmin": job.qmin, "cfg_qmax": job.qmax, "cfg_kstride": k,
              "cfg_astride": m if ap.ws else k, "cfg_a_start": 0, "cfg_b_start": 0, "cfg_o_start": 0,
              "cfg_ostride": m, "cfg_p_start": 0,
              "cfg_first": 1, "cfg_last": 1, "cfg_beats": g * ct * m}
    live = [min(C, n - tile * C) for _ in range(g) for tile in range(ct) for _ in range(m)]  # word (g, ct, m)
    return Words(a=_pack(a_words, D), b=_pack(b_words, D), params=params, config=config, live_lanes=live)


def _os_a_words(a: np.ndarray, R: int) -> np.ndarray:
    """OS: word (g, rt, t) holds A[g][rt*R + i, t] in lane i (rows past M zero)."""
    g, m, k = a.shape
    rt = math.ceil(m / R)
    padded = np.zeros((g, rt * R, k), np.int64)
    padded[:, :m] = a
    return padded.reshape(g, rt, R, k).transpose(0, 1, 3, 2).reshape(-1, R)


def _ws_a_words(a: np.ndarray, R: int) -> np.ndarray:
    """WS: word (g, kt, m) holds A[g][m, kt*R + i] in lane i (K past its end zero)."""
    g, m, k = a.shape
    kt = math.ceil(k / R)
    padded = np.zeros((g, m, kt * R), np.int64)
    padded[:, :, :k] = a
    return padded.reshape(g, m, kt, R).transpose(0, 2, 1, 3).reshape(-1, R)


CONFIG_PORTS = ("cfg_m", "cfg_k", "cfg_n", "cfg_groups", "cfg_row_tiles", "cfg_col_tiles", "cfg_zp", "cfg_qmin",
                "cfg_qmax", "cfg_kstride", "cfg_astride", "cfg_a_start", "cfg_b_start", "cfg_o_start", "cfg_ostride",
                "cfg_p_start", "cfg_first", "cfg_last", "cfg_beats")  # the order rtl/harness.cpp reads them in


def chunk_runs(w: Words, job: GemmJob, ap: ArrayParams, chunks) -> Words:
    """The layer as the tiler's chunks, in order: each (g, m0, m, k0, k, n0, n) one run of the engine over
    the loaded memories (hwsim.tiling.Step has these fields). Its K chunks accumulate in the engine's
    accumulator memory; the last chunk of an output tile requantizes; the layer's last run streams
    every result word back. OS: m0 and n0 must lie on array tiles (the tiler's tiles are array-aligned).
    WS: n0 on a column tile; the A words are laid out anew per K chunk (word (g, chunk, kt, m), lanes
    the chunk's K from its k0), so K chunks of any size stream whole words."""
    if ap.ws:
        return _ws_chunk_runs(w, job, ap, chunks)
    R, C = ap.rows, ap.cols
    rt_all, ct_all = tiles(job, ap)
    runs = []
    for i, s in enumerate(chunks):
        if s.m0 % R or s.n0 % C:
            raise ConfigError(f"{job.name}: chunk at m0 = {s.m0}, n0 = {s.n0} is not on the {R}x{C} array's tiles")
        rt0, ct0 = s.m0 // R, s.n0 // C
        runs.append(w.config | {
            "cfg_m": s.m, "cfg_k": s.k, "cfg_n": s.n, "cfg_groups": 1, "cfg_row_tiles": math.ceil(s.m / R),
            "cfg_col_tiles": math.ceil(s.n / C), "cfg_kstride": job.k, "cfg_astride": job.k,
            "cfg_a_start": (s.g * rt_all + rt0) * job.k + s.k0, "cfg_b_start": (s.g * ct_all + ct0) * job.k + s.k0,
            "cfg_o_start": (s.g * ct_all + ct0) * job.m + s.m0, "cfg_ostride": job.m,
            "cfg_p_start": s.g * job.n + s.n0, "cfg_first": int(s.k0 == 0), "cfg_last": int(s.k0 + s.k == job.k),
            "cfg_beats": w.config["cfg_beats"] if i == len(chunks) - 1 else 0})
    return dataclasses.replace(w, runs=tuple(runs))


def _ws_chunk_runs(w: Words, job: GemmJob, ap: ArrayParams, chunks) -> Words:
    R, C = ap.rows, ap.cols
    _, ct_all = tiles(job, ap)
    spans = sorted({(s.k0, s.k) for s in chunks})
    blocks, base, a_words = {}, 0, []
    for g in range(job.groups):
        for k0, k in spans:
            blocks[g, k0] = base
            words_ = _ws_a_words(job.a[g:g + 1, :, k0:k0 + k], R)
            a_words.append(words_)
            base += len(words_)
    runs = []
    for i, s in enumerate(chunks):
        if s.n0 % C:
            raise ConfigError(f"{job.name}: chunk at n0 = {s.n0} is not on the {R}x{C} array's column tiles")
        ct0 = s.n0 // C
        runs.append(w.config | {
            "cfg_m": s.m, "cfg_k": s.k, "cfg_n": s.n, "cfg_groups": 1, "cfg_row_tiles": math.ceil(s.k / R),
            "cfg_col_tiles": math.ceil(s.n / C), "cfg_kstride": job.k, "cfg_astride": job.m,
            "cfg_a_start": blocks[s.g, s.k0] + s.m0, "cfg_b_start": (s.g * ct_all + ct0) * job.k + s.k0,
            "cfg_o_start": (s.g * ct_all + ct0) * job.m + s.m0, "cfg_ostride": job.m,
            "cfg_p_start": s.g * job.n + s.n0, "cfg_first": int(s.k0 == 0), "cfg_last": int(s.k0 + s.k == job.k),
            "cfg_beats": w.config["cfg_beats"] if i == len(chunks) - 1 else 0})
    a = _pack(np.concatenate(a_words), ap.data_bits)
    return dataclasses.replace(w, a=a, runs=tuple(runs))


def results(beats: list[int], job: GemmJob, ap: ArrayParams) -> np.ndarray:
    """Streamed result words -> (G, M, N) int8 outputs."""
    _, ct = tiles(job, ap)
    g, m, n = job.groups, job.m, job.n
    lanes = np.array([unpack(w, ap.cols, ap.data_bits) for w in beats], np.int64)
    out = lanes.reshape(g, ct, m, ap.cols).transpose(0, 2, 1, 3).reshape(g, m, ct * ap.cols)
    return out[:, :, :n]
