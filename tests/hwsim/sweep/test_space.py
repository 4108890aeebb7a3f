"""Sweep spaces: TOML and --axis expansion, constraints, and one-line errors that name the key."""
import pytest

from hwsim.config import Dataflow
from hwsim.sweep.space import Constraint, parse_space, points
from quant.errors import ConfigError


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
