"""Sweep spaces: TOML and --axis expansion, constraints, and one-line errors that name the key."""
import copy
import datetime
import random
import re
from dataclasses import replace

import pytest

from hwsim.config import Dataflow
from hwsim.sweep.space import Constraint, load_space, parse_space, points
from quant.errors import ConfigError, HwsimError
from tests.conftest import ROOT


def grid(doc, axes=()):
    return points(parse_space(doc, axes))


def test_lists_ranges_and_aliases():
    pts = grid({"clock_mhz": 200, "space": {"array": ["4x8", "16x16"], "sram_kib": {"start": 16, "stop": 64,
                                                                                     "factor": 2},
                                            "dram_bytes_per_cycle": {"start": 4, "stop": 12, "step": 4}}})
    assert len(pts) == 2 * 3 * 3
    assert {(p.config.rows, p.config.cols) for p in pts} == {(4, 8), (16, 16)}
    assert {p.config.ifmap_sram_kib for p in pts} == {16, 32, 64}
    assert all(p.config.ofmap_sram_kib == p.config.filter_sram_kib == p.config.ifmap_sram_kib for p in pts)
    assert {p.config.dram_bytes_per_cycle for p in pts} == {4, 8, 12}
    assert all(p.config.clock_mhz == 200 for p in pts)  # fixed in the base config
    assert len({p.key for p in pts}) == len(pts)


def test_cli_axes_add_to_and_override_the_file():
    pts = grid({"space": {"rows": [4, 8], "dataflow": ["os"]}}, ["dataflow=os,ws", "weight_bits=8,4"])
    assert {p.config.dataflow for p in pts} == {Dataflow.OS, Dataflow.WS}
    assert {p.weight_bits for p in pts} == {8, 4} and len(pts) == 2 * 2 * 2


def test_constraints_filter_the_grid():
    pts = grid({"space": {"rows": [4, 8, 16, 32], "cols": [4, 8, 16, 32], "dataflow": ["os", "ws"]},
                "constraints": {"require": ["pes <= 256", "rows >= cols or dataflow == 'ws'"]}})
    assert pts and all(p.config.pes <= 256 for p in pts)
    assert all(p.config.rows >= p.config.cols or p.config.dataflow is Dataflow.WS for p in pts)
    assert len(pts) == 8 + 13  # OS: rows >= cols and rows * cols <= 256; WS: rows * cols <= 256


def test_constraint_expressions():
    names = {"rows": 8, "cols": 16, "pes": 128, "dataflow": "ws"}
    assert Constraint("4 <= rows < cols <= 16")(names)
    assert Constraint("dataflow in ('ws', 'is') and not rows > 8")(names)
    assert not Constraint("rows * cols % 3 == 0 or -rows > 0")(names)


@pytest.mark.parametrize("doc,axes,match", [
    ({"space": {"rows": [4]}, "speed": 3}, (), "unknown key 'speed'"),
    ({"space": {"rowz": [4]}}, (), "space.rowz: unknown axis"),
    ({"space": {"rows": []}}, (), "space.rows: empty list"),
    ({"space": {"cols": {"start": 64, "stop": 8, "step": 8}}}, (), "space.cols: empty range"),
    ({"space": {"cols": {"start": 8, "stop": 64}}}, (), "space.cols: a range is"),
    ({"space": {"rows": [4, 0]}}, (), "space.rows"),
    ({"space": {"dataflow": ["os", "xs"]}}, (), "space.dataflow"),
    ({"space": {"weight_bits": [8, 12]}}, (), "space.weight_bits"),
    ({"space": {"array": ["8x8"], "rows": [4]}}, (), "space.rows: give rows or array"),
    ({"space": {"rows": [4, 4]}}, (), "space.rows: values repeat"),
    ({"space": {"rows": [4]}, "constraints": {"require": ["rowz < 3"]}}, (), "unknown name 'rowz'"),
    ({"space": {"rows": [4]}, "constraints": {"require": ["rows <"]}}, (), "not an expression"),
    ({"space": {"rows": [4]}, "constraints": {"require": ["__import__('os')"]}}, (), "unknown name '__import__'"),
    ({"space": {"rows": [4]}, "constraints": {"needs": ["rows < 3"]}}, (), "constraints.needs: unknown key"),
    ({"space": {"rows": [4]}, "pareto": {"minimise": ["pes"]}}, (), "pareto.minimise: unknown key"),
    ({"space": {"rows": [4]}, "accuracy": {"images": -1}}, (), "accuracy.images"),
    ({"space": {"rows": [4]}, "clock_mhz": 0}, (), "base config"),
    ({}, (), "no axes"),
    ({}, ("rows",), "--axis 'rows'"),
])
def test_bad_spaces_name_the_key(doc, axes, match):
    with pytest.raises(ConfigError, match=match.replace("(", r"\(").replace(")", r"\)")):
        grid(doc, axes)


def test_contradictory_constraints_name_the_one_that_empties_the_space():
    doc = {"space": {"rows": [4, 8, 16, 32]}, "constraints": {"require": ["rows <= 8", "rows >= 16"]}}
    with pytest.raises(ConfigError, match="'rows >= 16' leaves no points after 'rows <= 8'"):
        grid(doc)


@pytest.mark.parametrize("axis,match", [
    ({"start": 1e20, "stop": 1e20 + 1e4, "step": 1}, "does not advance past 1e+20"),
    ({"start": 1e20, "stop": 2e20, "step": 1}, "about 10^20 values, more than the limit of 1,000,000"),
    ({"start": 1, "stop": 1e300, "factor": 1.0000000000000002}, "about 10^18 values"),
    ({"start": 1, "stop": float("inf"), "step": 1}, "stop must be a finite number, not inf"),
    ({"start": float("nan"), "stop": 8, "step": 1}, "start must be a finite number"),
    ({"start": -1e308, "stop": 1e308, "step": 1}, "more than 10^308 values"),
    ({"start": 1, "stop": 8, "step": "2"}, "step must be a finite number, not '2'"),
    ({"start": 1, "stop": 8, "step": True}, "step must be a finite number, not True"),
    ({"start": 0, "stop": 10**12, "step": 1}, "1,000,000,000,001 values"),
])
def test_ranges_that_never_end_are_refused_before_enumerating(axis, match):
    """Each of these looped until memory ran out: the range is counted first, and checked to advance."""
    with pytest.raises(ConfigError, match="space.rows: .*" + match.replace("^", r"\^").replace("+", r"\+")):
        parse_space({"space": {"rows": axis}})


def test_space_size_is_counted_not_enumerated_and_the_limit_can_be_raised():
    huge = {"space": {"rows": {"start": 1, "stop": 1000, "step": 1}, "cols": {"start": 1, "stop": 1000, "step": 1},
                      "batch": {"start": 1, "stop": 100_000, "step": 1}}}  # 10^11 points
    with pytest.raises(ConfigError, match=r"space: 100,000,000,000 points \(1,000 rows x 1,000 cols x 100,000 "
                                          r"batch\) is more than the limit of 1,000,000; .*\[limits\] max_points"):
        parse_space(huge)
    doc = {"space": {"rows": [1, 2, 4], "cols": [1, 2]}, "limits": {"max_points": 5}}
    with pytest.raises(ConfigError, match="6 points"):
        parse_space(doc)
    doc["limits"]["max_points"] = 6
    space = parse_space(doc)
    assert space.size == 6 and len(points(space)) == 6
    assert "max_points" not in str(space.to_dict())  # raising the limit keeps a sweep folder resumable
    with pytest.raises(ConfigError, match="space: 6 points"):  # a Space built by hand is checked too
        points(replace(space, max_points=2))


@pytest.mark.parametrize("text,match", [
    ("10**10**10 > rows", "exponent 10000000000 is out of range"),
    ("rows ** 100000 > 1", "exponent 100000 is out of range"),
    ("(10**18) ** 60 > 1", "too large"),
    ("2.0 ** 60 * 2.0 ** 60 > 1", "out of range"),
    ("1e308 * 10 > rows", "out of range"),
    ("'a' * 10**10 == dataflow", "repetition longer than 1000"),
    ("(1,) * 10**9 == (rows,)", "repetition longer than 1000"),
    ("dataflow * 10**6 == 'os'", "repetition longer than 1000"),
    ("'%0999999999d' % rows == 'x'", "arithmetic needs numbers"),
    ("(-8) ** 0.5 > rows", "not a real number"),
    ("rows / 0 > 1", "division by zero"),
    ("'a' < rows", "cannot be evaluated"),
    ("-" * 500 + "rows > 0", "too complex|nests too deeply"),
    ("(" * 300 + "rows" + ")" * 300 + " > 0", "nests too deeply"),
    ("(" * 60 + "rows" + ",)" * 60 + " == 0", "too complex"),
    ("rows" + " + 1" * 150 + " > 0", "too complex"),
    ("1" * 1001 + " > rows", "longer than 1000 characters"),
], ids=lambda v: v[:30])
def test_constraint_evaluation_is_bounded(text, match):
    """10**10**10 hung, 'a'*10**10 and deep nesting crashed: each is now one quick ConfigError."""
    with pytest.raises(ConfigError, match=f"constraints.require: .*({match})"):
        grid({"space": {"rows": [4, 8], "dataflow": ["os"]}, "constraints": {"require": [text]}})


def test_bounded_evaluator_still_computes_ordinary_constraints():
    names = {"rows": 8, "cols": 16, "pes": 128, "dataflow": "ws", "sram_kib_total": 96}
    assert Constraint("2 ** 10 == 1024 and rows ** 2 <= pes < 2 ** 63")(names)
    assert Constraint("dataflow + 's' == 'wss' and dataflow * 2 == 'wsws' and (rows,) * 2 == (8, 8)")(names)
    assert Constraint("sram_kib_total / 3 == 32.0 and -rows // 3 == -3 and pes % 7 == 2")(names)


@pytest.mark.parametrize("doc,match", [
    ({"preset": [1]}, "preset = \\[1\\]: must be a preset name string"),
    ({"preset": {"name": "edge8"}}, "preset = .*: must be a preset name string"),
    ({"accelerator": 5}, "unknown key 'accelerator'"),
    ({"rows": {"a": 1}}, "base config: config rows"),
    ({"dataflow": ["os"]}, "base config: unknown dataflow"),
    ({"clock_mhz": float("inf")}, "base config: config clock_mhz = inf"),
    ({"space": {"clock_mhz": [100, float("inf")]}}, "space.clock_mhz: inf"),
    ({"space": {"rows": [[4]]}}, "space.rows"),
    ({"space": {"weight_bits": [{"a": 8}]}}, "space.weight_bits"),
    ({"space": {"rows": {"start": [1], "stop": 8, "step": 1}}}, "space.rows: range start must be a finite number"),
    ({"space": 5}, "space: must be a table"),
    ({"limits": {"max_points": 0}}, "limits.max_points = 0: must be a positive integer"),
    ({"limits": {"max_points": "many"}}, "limits.max_points = 'many'"),
    ({"limits": {"max_pts": 10}}, "limits.max_pts: unknown key"),
    ({"pareto": {"minimize": ["status"]}}, "pareto.minimize: 'status' is not a numeric result column"),
    ({"pareto": {"maximize": ["int8_top1"]}}, "pareto.maximize: 'int8_top1' is not a numeric result column"),
])
def test_wrong_types_in_the_space_file_name_the_key(doc, match):
    doc = {"space": {"rows": [4, 8]}, **doc}
    with pytest.raises(ConfigError, match=match):
        grid(doc)


HOSTILE = [None, [], {}, [1], [[1]], {"a": 1}, "x", "", "os", "8x8", 0, -1, 2**63 - 1, -2**63, 1.5, float("inf"),
           float("nan"), True, 1e308, 5e-324, datetime.date(1979, 5, 27), datetime.datetime(1979, 5, 27, 7, 32),
           datetime.time(7, 32), [1, "a"], [{}], {"start": 1}, {"start": 1, "stop": 8, "step": 0},
           {"start": 1, "stop": 1e300, "factor": 1.0000000000000002}, {"start": "a", "stop": 2, "step": 1},
           ["rows ** rows ** rows > 1"], ["'a' * rows * rows * rows * rows * rows == 'a'"], ["rows in dataflow"],
           ["(rows, cols) < 3"], ["not"], ["10**10**10"]]
FUZZ_BASE = {"preset": "edge8", "clock_mhz": 200,
             "space": {"array": ["4x8", "16x16"], "sram_kib": {"start": 16, "stop": 64, "factor": 2},
                       "dram_bytes_per_cycle": {"start": 4, "stop": 12, "step": 4}, "dataflow": ["os", "ws"],
                       "weight_bits": [8, 4], "batch": [1, 2]},
             "constraints": {"require": ["pes <= 256", "dataflow != 'is' or rows == cols"]},
             "pareto": {"minimize": ["latency_us"], "maximize": ["int8_top1_pct"]},
             "accuracy": {"images": 10}, "limits": {"max_points": 3000}}


def _mutate(rng: random.Random, doc: dict) -> dict:
    """The document with one to three values replaced by hostile ones (or keys dropped or added)."""
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        parents = [d for d in _containers(doc) if d]
        parent = rng.choice(parents)
        key = rng.choice(list(parent) if isinstance(parent, dict) else range(len(parent)))
        r = rng.random()
        if r < 0.1 and isinstance(parent, dict):
            del parent[key]
        elif r < 0.2 and isinstance(parent, dict):
            parent[rng.choice(["rows", "x", "space", "preset", "acc_bits", "sram", "array", "limits"])] = \
                copy.deepcopy(rng.choice(HOSTILE))
        else:
            parent[key] = copy.deepcopy(rng.choice(HOSTILE))
    return doc


def _containers(doc):
    yield doc
    for v in (doc.values() if isinstance(doc, dict) else doc):
        if isinstance(v, dict | list):
            yield from _containers(v)


def test_mutated_spaces_load_or_raise_one_hwsim_error():
    """Hostile values anywhere in a space (wrong types, TOML dates, inf/nan, huge ranges, runaway
    constraints): every document either gives its points or raises HwsimError, never anything else."""
    rng = random.Random(13)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(400):
        doc = _mutate(rng, FUZZ_BASE)
        try:
            points(parse_space(doc))
            outcomes["ok"] += 1
        except HwsimError:
            outcomes["refused"] += 1
    assert outcomes["ok"] and outcomes["refused"]  # both kinds were exercised


def test_mutated_toml_text_loads_or_raises_one_hwsim_error(tmp_path):
    """The same for the file's text: characters dropped or inserted, through load_space."""
    text = (ROOT / "examples" / "lenet_sweep.toml").read_text() + "\n[limits]\nmax_points = 5000\n"
    tokens = ["[", "]", "{", "}", "=", "inf", "nan", "1e400", "-", '"', "'", ",", "0", "99999999999999999999",
              "[[space]]", "\n", "1979-05-27", "true", ".", "**", "\x00", "\xff"]
    rng, path = random.Random(13), tmp_path / "space.toml"
    for _ in range(300):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(chars))
            if rng.random() < 0.4:
                chars[pos:pos + rng.randint(1, 5)] = []
            else:
                chars.insert(pos, rng.choice(tokens))
        path.write_text("".join(chars))
        try:
            points(load_space(path))
        except HwsimError:
            pass


def test_batch_axis_uses_the_config_bound():
    from hwsim.config import MAX_BATCH
    from hwsim.sweep.space import load_space
    from quant.errors import ConfigError
    with pytest.raises(ConfigError, match=rf"space\.batch: .*1\.\.{MAX_BATCH}"):
        load_space(None, [f"batch=1,{MAX_BATCH + 1}"])


def test_accumulator_and_dram_latency_axes():
    pts = grid({"dram_request_bytes": 128, "space": {"acc_sram_kib": {"start": 8, "stop": 32, "factor": 2},
                                                     "dram_latency_cycles": [0, 10, 100], "sram_kib": [16, 64]}},
               ["dram_request_bytes=32,64"])
    assert len(pts) == 3 * 3 * 2 * 2 and len({p.key for p in pts}) == len(pts)
    assert {p.config.acc_sram_kib for p in pts} == {8, 16, 32}
    assert {p.config.dram_latency_cycles for p in pts} == {0, 10, 100}
    assert {p.config.dram_request_bytes for p in pts} == {32, 64}  # the axis overrides the base value
    assert {p.config.ifmap_sram_kib for p in pts} == {16, 64}  # sram_kib: ifmap, filter and ofmap, not acc
    for p in pts:
        c, names = p.config, p.names()
        assert names["sram_kib_total"] == c.ifmap_sram_kib + c.filter_sram_kib + c.ofmap_sram_kib + c.acc_sram_kib
        assert (names["acc_sram_kib"], names["dram_latency_cycles"]) == (c.acc_sram_kib, c.dram_latency_cycles)
    kept = grid({"space": {"acc_sram_kib": [8, 64], "sram_kib": [16, 64]},
                 "constraints": {"require": ["sram_kib_total <= 112", "dram_latency_cycles == 10"]}})
    assert [(p.config.ifmap_sram_kib, p.config.acc_sram_kib) for p in kept] == [(16, 8), (16, 64)]


@pytest.mark.parametrize("doc, match", [
    ({"space": {"acc_sram_kib": [32, 0]}},
     "space.acc_sram_kib: config acc_sram_kib = 0: must be an integer in 1..1048576"),
    ({"space": {"dram_latency_cycles": [-1, 10]}}, "space.dram_latency_cycles: config dram_latency_cycles = -1"),
    ({"space": {"dram_request_bytes": [64.5]}}, "space.dram_request_bytes: config dram_request_bytes = 64.5"),
    ({"acc_sram_kib": 0, "space": {"rows": [8]}}, "base config: config acc_sram_kib = 0"),
])
def test_bad_accumulator_and_dram_axes_name_the_key(doc, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        grid(doc)
