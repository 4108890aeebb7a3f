"""Host side of the tile engine: one GEMM layer -> memory words and config registers, results -> arrays.

Pure numpy; the cocotb driver and the tests use it, the hardware is documented in rtl.engine.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from hwsim.tiling import Step
from quant.errors import ConfigError
from rtl.params import BIAS_BITS, M0_BITS, SHIFT_BITS, ArrayParams, EngineParams, word_bytes


@dataclass(frozen=True)
class RawInput:
    """A conv layer's raw int8 input and geometry, for the hardware im2col (WS engines): x is
    (images, G, C, H, W); A's rows are the output pixels of each image in turn, its columns
    (c, ky, kx) as in quant's im2col. Padding reads zp."""
    x: np.ndarray
    kh: int = 1
    kw: int = 1
    sh: int = 1
    sw: int = 1
    pt: int = 0
    pl: int = 0
    out_h: int = 1
    out_w: int = 1
    zp: int = 0

    @property
    def in_h(self) -> int:
        return self.x.shape[3]

    @property
    def in_w(self) -> int:
        return self.x.shape[4]

    @property
    def window(self) -> int:
        return self.kh * self.kw

    @property
    def bottom_rows(self) -> int:
        """Input rows past the bottom edge that windows read (the bottom padding in use)."""
        return max(0, (self.out_h - 1) * self.sh - self.pt + self.kh - self.in_h)


@dataclass(frozen=True)
class GemmJob:
    """One layer for the engine: A (G, M, K) int8, B (G, K, N) int8, per-channel requant (G*N entries).
    raw: a conv's raw input (the WS engine's hardware im2col reads it); None: A's rows are the inputs
    (a Dense layer, or any GEMM: each row one 1x1 'image' of K channels)."""
    name: str
    a: np.ndarray
    b: np.ndarray
    bias: np.ndarray  # int32 per output channel
    m0: np.ndarray
    shift: np.ndarray
    zero_point: int
    qmin: int
    qmax: int
    raw: RawInput | None = None

    @property
    def raw_input(self) -> RawInput:
        if self.raw is not None:
            return self.raw
        return RawInput(self.a.transpose(1, 0, 2)[:, :, :, None, None])  # (M, G, K, 1, 1)

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


def job_for(node, a: np.ndarray, b: np.ndarray, x: np.ndarray | None = None) -> GemmJob:
    """The engine job of a quantized Conv/Dense node on its GEMM operands (one image's A, the weights B);
    x: a conv's int8 input (images, C, H, W), for the hardware im2col."""
    rq = node.quant.requant
    raw = None
    if x is not None and node.op.value == "Conv":
        at = node.attrs
        if tuple(at.dilation) != (1, 1):
            raise ConfigError(f"{node.name}: the hardware im2col reads undilated windows, not dilation "
                              f"{tuple(at.dilation)}")
        g = at.groups
        xs = x.reshape(x.shape[0], g, x.shape[1] // g, *x.shape[2:])
        raw = RawInput(xs, kh=at.kernel[0], kw=at.kernel[1], sh=at.stride[0], sw=at.stride[1], pt=at.pads[0],
                       pl=at.pads[1], out_h=node.out_shape[2], out_w=node.out_shape[3],
                       zp=int(node.quant.in_zero_points[0]))
    return GemmJob(node.name, a, b, node.quant.acc_bias, rq.m0, rq.shift, rq.zero_point, rq.qmin, rq.qmax, raw)


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


DEFAULT_BANKS = 8  # raw-input banks of a WS engine: kernels up to 8 rows tall


def needs(job: GemmJob, ap: ArrayParams, chunks=None, banks: int = DEFAULT_BANKS) -> dict[str, int]:
    """Memory words the job occupies (a_depth, b_depth, out_depth, param_depth; WS: raw_depth instead of
    a_depth, for its layout of `chunks`, default the whole layer)."""
    rt, ct = tiles(job, ap)
    sizes = {"a_depth": job.groups * rt * job.k, "b_depth": job.groups * ct * job.k,
             "out_depth": job.groups * ct * job.m, "param_depth": job.groups * job.n,
             "acc_depth": max((math.ceil(s.n / ap.cols) * s.m for s in chunks), default=0) if chunks
             else job.groups * ct * job.m}
    if ap.ws:
        plan = RawPlan.of(job, ap, banks, chunks or _whole(job))
        sizes |= {"a_depth": 0, "raw_depth": plan.raw_depth, "b_depth": plan.b_words}
    return sizes


def engine_for(jobs: list[GemmJob], ap: ArrayParams, chunks: dict | None = None) -> EngineParams:
    """The smallest engine that holds every job (memories sized to the largest layer; `chunks`: per
    layer name, the tiler's steps it will run as)."""
    sizes = [needs(j, ap, (chunks or {}).get(j.name)) for j in jobs]
    for job in jobs:
        ap.check_reduction(job.k, job.name)
    return EngineParams(ap, **{key: max(s[key] for s in sizes) for key in sizes[0]})



def _whole(job: GemmJob) -> list:
    """The layer as one chunk per group (a WS run covers one group: its im2col reads one block)."""
    return [Step(g, 0, job.m, 0, job.k, 0, job.n, 0, 0, 0) for g in range(job.groups)]


@dataclass(frozen=True)
class RawPlan:
    """Where the WS engine's raw input and permuted weights lie (rtl.im2col states the layout): per (group,
    K chunk) a block of every bank's words (base, pitch and words per image) and of the B memory."""
    banks: int
    wb: int  # bytes per raw word
    blocks: dict  # (g, k0) -> (base, pitch, img_words)
    b_blocks: dict  # (g, k0) -> first B word (column tiles of k words each)
    raw_words: int  # bank words used (the last block's end + its window's second word)
    b_words: int

    @property
    def raw_depth(self) -> int:
        """Words per even/odd memory."""
        return max(1, math.ceil(self.raw_words / 2))

    @classmethod
    def of(cls, job: GemmJob, ap: ArrayParams, banks: int, chunks) -> RawPlan:
        raw = job.raw_input
        lk = (banks - 1).bit_length()
        wb = word_bytes(ap.rows)
        if raw.kh > banks or raw.sh > banks or raw.pt > banks:
            raise ConfigError(f"{job.name}: the hardware im2col reads kernels, strides and top pads of at most "
                              f"{banks} rows, not {raw.kh}x{raw.kw} stride {raw.sh} pad {raw.pt}")
        _, ct = tiles(job, ap)
        spans = sorted({(s.k0, s.k) for s in chunks})
        blocks, b_blocks, base, b_base = {}, {}, 0, 0
        for g in range(job.groups):
            for k0, k in spans:
                if k0 % raw.window or k % raw.window:
                    raise ConfigError(f"{job.name}: K chunk {k0}..{k0 + k} is not whole channels of the "
                                      f"{raw.kh}x{raw.kw} window")
                cc = k // raw.window
                pitch = math.ceil(raw.in_w * cc / wb) + 1
                img_words = (((banks + raw.in_h + raw.bottom_rows - 1) >> lk) + 1) * pitch
                blocks[g, k0] = (base, pitch, img_words)
                base += raw.x.shape[0] * img_words
                b_blocks[g, k0] = b_base
                b_base += ct * k
        return cls(banks, wb, blocks, b_blocks, base + 1, b_base)


def _check_acc(job: GemmJob, engine: EngineParams, chunks) -> None:
    """Each run's output tile must fit a column's accumulator memory."""
    C = engine.array.cols
    need = max(math.ceil(s.n / C) * s.m for s in chunks)
    if need > engine.acc_words:
        raise ConfigError(f"{job.name}: an output tile needs {need:,} words of each column's accumulator memory; "
                          f"the engine has {engine.acc_words:,}")


def _ws_words(job: GemmJob, engine: EngineParams, chunks, whole: bool = False) -> Words:
    """A WS engine's raw input (flat word bank * 2 * raw_depth + L), its B rows in (ky, kx, c) order per K
    chunk, and one run per chunk."""
    ap = engine.array
    R, C, D = ap.rows, ap.cols, ap.data_bits
    Kb = engine.banks
    lk = (Kb - 1).bit_length()
    raw = job.raw_input
    plan = RawPlan.of(job, ap, Kb, chunks)
    if not whole:  # (a whole layer's run may hold more than a chunk's tile: words() leaves it to chunk_runs)
        _check_acc(job, engine, chunks)
    if plan.raw_depth > engine.raw_depth or plan.b_words > engine.b_depth:
        raise ConfigError(f"{job.name}: needs {plan.raw_depth} raw words per memory and {plan.b_words} B words; the "
                          f"engine has {engine.raw_depth} and {engine.b_depth}")
    mem = np.zeros((Kb, engine.raw_bank_words, plan.wb), np.uint8)
    x8 = raw.x.astype(np.int64) & 0xFF
    images = raw.x.shape[0]
    _, ct = tiles(job, ap)
    b_words = np.zeros((plan.b_words, C), np.int64)
    for (g, k0), (base, pitch, img_words) in plan.blocks.items():
        k = next(s.k for s in chunks if (s.g, s.k0) == (g, k0))
        cc, c0 = k // raw.window, k0 // raw.window
        for b in range(images):
            for r in range(raw.in_h):
                rl = Kb + r
                row = x8[b, g, c0:c0 + cc, r, :].T.reshape(-1)  # NHWC: in_w pixels x cc channels
                words_ = np.zeros(math.ceil(len(row) / plan.wb) * plan.wb, np.uint8)
                words_[:len(row)] = row
                start = base + b * img_words + (rl >> lk) * pitch
                mem[rl & (Kb - 1), start:start + len(words_) // plan.wb] = words_.reshape(-1, plan.wb)
        # B rows of the chunk in (ky, kx, c) order: row (ky*kw + kx)*cc + c is K index (c0+c)*kh*kw + ky*kw + kx
        ky, kx, c = np.meshgrid(np.arange(raw.kh), np.arange(raw.kw), np.arange(cc), indexing="ij")
        order = ((c0 + c) * raw.window + ky * raw.kw + kx).reshape(-1)
        bg = np.zeros((k, ct * C), np.int64)
        bg[:, :job.n] = job.b[g][order]
        at = plan.b_blocks[g, k0]
        b_words[at:at + ct * k] = bg.reshape(k, ct, C).transpose(1, 0, 2).reshape(-1, C)
    shifts = 8 * np.arange(plan.wb, dtype=object)
    flat = [int(sum(int(v) << int(s) for v, s in zip(w, shifts, strict=True))) for w in mem.reshape(-1, plan.wb)]
    runs = []
    for s in chunks:
        if s.n0 % C:
            raise ConfigError(f"{job.name}: chunk at n0 = {s.n0} is not on the {R}x{C} array's column tiles")
        base, pitch, img_words = plan.blocks[s.g, s.k0]
        cc = s.k // raw.window
        b0, rem = divmod(s.m0, raw.out_h * raw.out_w)
        oy0, ox0 = divmod(rem, raw.out_w)
        gl0, gl_img = Kb + oy0 * raw.sh - raw.pt, Kb - raw.pt
        ct0 = s.n0 // C
        runs.append({
            "cfg_m": s.m, "cfg_k": s.k, "cfg_n": s.n, "cfg_groups": 1, "cfg_row_tiles": math.ceil(s.k / R),
            "cfg_col_tiles": math.ceil(s.n / C), "cfg_zp": job.zero_point, "cfg_qmin": job.qmin,
            "cfg_qmax": job.qmax, "cfg_kstride": s.k, "cfg_astride": 0, "cfg_a_start": 0,
            "cfg_b_start": plan.b_blocks[s.g, s.k0] + ct0 * s.k, "cfg_o_start": (s.g * ct + ct0) * job.m + s.m0,
            "cfg_ostride": job.m, "cfg_p_start": s.g * job.n + s.n0, "cfg_first": int(s.k0 == 0),
            "cfg_last": int(s.k0 + s.k == job.k), "cfg_beats": 0,
            "cfg_cc": cc, "cfg_kw": raw.kw, "cfg_gstride": 0, "cfg_in_h": raw.in_h, "cfg_in_w": raw.in_w,
            "cfg_in_zp": raw.zp,
            "cfg_ox0": ox0, "cfg_oy0": oy0, "cfg_bx0": ox0 * raw.sw - raw.pl, "cfg_bxc0": (ox0 * raw.sw - raw.pl) * cc,
            "cfg_iyb0": oy0 * raw.sh - raw.pt, "cfg_gmod0": gl0 & (Kb - 1), "cfg_ra0": (gl0 >> lk) * pitch,
            "cfg_img0": base + b0 * img_words, "cfg_out_w": raw.out_w, "cfg_out_h": raw.out_h, "cfg_sw": raw.sw,
            "cfg_swc": raw.sw * cc, "cfg_sh": raw.sh, "cfg_bx_row": -raw.pl, "cfg_bxc_row": -raw.pl * cc,
            "cfg_iyb_img": -raw.pt, "cfg_gmod_img": gl_img & (Kb - 1), "cfg_ra_img": (gl_img >> lk) * pitch,
            "cfg_img_words": img_words, "cfg_pitch": pitch})
    beats = job.groups * ct * job.m
    runs[-1]["cfg_beats"] = beats
    return flat, _pack(b_words, D), tuple(runs)


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
    for key, value in needs(job, ap, banks=engine.banks).items():
        if key == "acc_depth":
            continue  # the accumulator holds one run's output tile: chunk_runs checks each chunk's
        have = getattr(engine, key)
        if value > have:
            raise ConfigError(f"{job.name}: needs {value:,} words of {key.removesuffix('_depth')} memory; "
                              f"the engine has {have:,}")
    g, m, k, n = job.groups, job.m, job.k, job.n
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
              "cfg_astride": k, "cfg_a_start": 0, "cfg_b_start": 0, "cfg_o_start": 0,
              "cfg_ostride": m, "cfg_p_start": 0,
              "cfg_first": 1, "cfg_last": 1, "cfg_beats": g * ct * m}
    live = [min(C, n - tile * C) for _ in range(g) for tile in range(ct) for _ in range(m)]  # word (g, ct, m)
    if ap.ws:  # one run over the groups: group g's raw block lies cfg_gstride words after group g-1's
        a, b, runs = _ws_words(job, engine, _whole(job), whole=True)
        blocks = RawPlan.of(job, ap, engine.banks, _whole(job)).blocks
        stride = blocks[1, 0][0] - blocks[0, 0][0] if g > 1 else 0
        config = runs[0] | {"cfg_groups": g, "cfg_gstride": stride, "cfg_beats": g * ct * m}
        return Words(a=a, b=b, params=params, config=config, live_lanes=live)
    b = np.zeros((g, k, ct * C), np.int64)
    b[:, :, :n] = job.b
    b_words = b.reshape(g, k, ct, C).transpose(0, 2, 1, 3).reshape(-1, C)  # word (g, ct, t), lane j
    return Words(a=_pack(_os_a_words(job.a, R), D), b=_pack(b_words, D), params=params, config=config,
                 live_lanes=live)


def _os_a_words(a: np.ndarray, R: int) -> np.ndarray:
    """OS: word (g, rt, t) holds A[g][rt*R + i, t] in lane i (rows past M zero)."""
    g, m, k = a.shape
    rt = math.ceil(m / R)
    padded = np.zeros((g, rt * R, k), np.int64)
    padded[:, :m] = a
    return padded.reshape(g, rt, R, k).transpose(0, 1, 3, 2).reshape(-1, R)


CONFIG_PORTS = ("cfg_m", "cfg_k", "cfg_n", "cfg_groups", "cfg_row_tiles", "cfg_col_tiles", "cfg_zp", "cfg_qmin",
                "cfg_qmax", "cfg_kstride", "cfg_astride", "cfg_a_start", "cfg_b_start", "cfg_o_start", "cfg_ostride",
                "cfg_p_start", "cfg_first", "cfg_last", "cfg_beats")


# the WS engine's hardware im2col (rtl.im2col): the layer's geometry and the run's first pixel
WS_CONFIG_PORTS = ("cfg_cc", "cfg_kw", "cfg_in_h", "cfg_in_w", "cfg_in_zp", "cfg_gstride")
PIXEL_CONFIG_PORTS = ("cfg_ox0", "cfg_oy0", "cfg_bx0", "cfg_bxc0", "cfg_iyb0", "cfg_gmod0", "cfg_ra0", "cfg_img0",
                      "cfg_out_w", "cfg_out_h", "cfg_sw", "cfg_swc", "cfg_sh", "cfg_bx_row", "cfg_bxc_row",
                      "cfg_iyb_img", "cfg_gmod_img", "cfg_ra_img", "cfg_img_words", "cfg_pitch")
SIGNED_CONFIG_PORTS = ("cfg_bx0", "cfg_bxc0", "cfg_iyb0", "cfg_bx_row", "cfg_bxc_row", "cfg_iyb_img")


def config_ports(ws: bool) -> tuple[str, ...]:
    """The engine's configuration ports in the order the harness reads them (rtl.harness.config_header)."""
    return CONFIG_PORTS + (WS_CONFIG_PORTS + PIXEL_CONFIG_PORTS if ws else ())


def chunk_runs(w: Words, job: GemmJob, engine: EngineParams, chunks) -> Words:
    """The layer as the tiler's chunks, in order: each (g, m0, m, k0, k, n0, n) one run of the engine over
    the loaded memories (hwsim.tiling.Step has these fields). Its K chunks accumulate in the engine's
    accumulator memory; the last chunk of an output tile requantizes; the layer's last run streams
    every result word back. OS: m0 and n0 must lie on array tiles (the tiler's tiles are array-aligned).
    WS: n0 on a column tile; the A words are laid out anew per K chunk (word (g, chunk, kt, m), lanes
    the chunk's K from its k0), so K chunks of any size stream whole words."""
    ap = engine.array
    if ap.ws:
        return ws_chunk_runs(w, job, engine, chunks)
    R, C = ap.rows, ap.cols
    rt_all, ct_all = tiles(job, ap)
    _check_acc(job, engine, chunks)
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


def ws_chunk_runs(w: Words, job: GemmJob, engine: EngineParams, chunks) -> Words:
    """A WS engine's layer as the tiler's chunks: the raw input and B laid out per K chunk, one run each."""
    a, b, runs = _ws_words(job, engine, chunks)
    return dataclasses.replace(w, a=a, b=b, config=runs[0], runs=runs)


def results(beats: list[int], job: GemmJob, ap: ArrayParams) -> np.ndarray:
    """Streamed result words -> (G, M, N) int8 outputs."""
    _, ct = tiles(job, ap)
    g, m, n = job.groups, job.m, job.n
    lanes = np.array([unpack(w, ap.cols, ap.data_bits) for w in beats], np.int64)
    out = lanes.reshape(g, ct, m, ap.cols).transpose(0, 2, 1, 3).reshape(g, m, ct * ap.cols)
    return out[:, :, :n]
