"""The design space of a sweep: a TOML file (and/or --axis KEY=V1,V2 on the command line)
expanded into a list of points, filtered by constraints. Every mistake is one ConfigError
that names the key.

    preset = "edge8"                  # the base config; top-level AcceleratorConfig keys fix values
    clock_mhz = 200

    [space]                           # each axis: a list, or a range table
    rows = [8, 16, 32]                #   {start = 8, stop = 64, step = 8}   (stop included)
    cols = {start = 4, stop = 64, factor = 2}   #   geometric: 4, 8, 16, 32, 64
    dataflow = ["os", "ws", "is"]
    sram_kib = [32, 64, 128]          # all three buffers; or ifmap_sram_kib / filter_sram_kib / ...
    weight_bits = [8, 6, 4]

    [constraints]
    require = ["rows * cols <= 4096", "rows <= 4 * cols"]

    [pareto]                          # default: minimize latency_us, pes, sram_kib_total;
    minimize = ["latency_us", "pes"]  #          maximize int8_top1_pct
    maximize = ["int8_top1_pct"]

    [accuracy]
    images = 1000                     # test images per distinct bit width (default 1000)
"""
from __future__ import annotations

import ast
import itertools
import operator
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from hwsim.config import (
    DEFAULT_PRESET,
    AcceleratorConfig,
    Dataflow,
    override,
    parse_array,
    parse_dataflow,
    preset,
    read_toml,
)
from hwsim.sweep.store import parse_value
from quant.errors import ConfigError, HwsimError
from quant.quantize import QuantConfig

CONFIG_AXES = ("rows", "cols", "dataflow", "ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib",
               "dram_bytes_per_cycle", "clock_mhz", "acc_bits", "vector_lanes")
AXES = (*CONFIG_AXES, "weight_bits", "act_bits", "batch")
ALIASES = ("array", "sram_kib")  # array = "16x16" -> rows, cols; sram_kib -> all three buffers
BASE_KEYS = {*(f.name for f in fields(AcceleratorConfig) if f.name != "name"), "array", "sram"}
SECTIONS = ("space", "constraints", "pareto", "accuracy")
DEFAULT_MINIMIZE = ("latency_us", "pes", "sram_kib_total")
DEFAULT_MAXIMIZE = ("int8_top1_pct",)
DEFAULT_IMAGES = 1000


@dataclass(frozen=True)
class Point:
    """One design point: an accelerator config plus the quantization bit widths and batch."""
    config: AcceleratorConfig
    weight_bits: int = 8
    act_bits: int = 8
    batch: int = 1

    @property
    def key(self) -> str:
        c = self.config
        return (f"{c.rows}x{c.cols}-{c.dataflow.value}-{c.ifmap_sram_kib}/{c.filter_sram_kib}/{c.ofmap_sram_kib}KiB"
                f"-bw{c.dram_bytes_per_cycle:g}-{c.clock_mhz:g}MHz-acc{c.acc_bits}-l{c.vector_lanes}"
                f"-w{self.weight_bits}a{self.act_bits}-b{self.batch}")

    def names(self) -> dict[str, Any]:
        """The values constraints and the results table see."""
        c = self.config
        return {**{a: getattr(c, a) for a in CONFIG_AXES}, "dataflow": c.dataflow.value, "pes": c.pes,
                "sram_kib_total": c.ifmap_sram_kib + c.filter_sram_kib + c.ofmap_sram_kib,
                "weight_bits": self.weight_bits, "act_bits": self.act_bits, "batch": self.batch}


NAMES = (*AXES, "pes", "sram_kib_total")


@dataclass(frozen=True)
class Space:
    base: AcceleratorConfig
    axes: tuple[tuple[str, tuple], ...]  # (name, values) in a fixed order
    constraints: tuple[str, ...] = ()
    minimize: tuple[str, ...] = DEFAULT_MINIMIZE
    maximize: tuple[str, ...] = DEFAULT_MAXIMIZE
    images: int = DEFAULT_IMAGES

    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), "axes": {k: [v.value if isinstance(v, Dataflow) else v for v in vs]
                                                     for k, vs in self.axes},
                "constraints": list(self.constraints), "minimize": list(self.minimize),
                "maximize": list(self.maximize), "images": self.images}


def _expand(key: str, spec: Any) -> tuple:
    """A list, a scalar, or a {start, stop, step|factor} range -> a non-empty tuple of values."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"start", "stop", "step", "factor"})
        if unknown or "start" not in spec or "stop" not in spec or ("step" in spec) == ("factor" in spec):
            raise ConfigError(f"space.{key}: a range is {{start, stop, step}} or {{start, stop, factor}}"
                              + (f" (unknown key {unknown[0]!r})" if unknown else ""))
        start, stop = spec["start"], spec["stop"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (start, stop)):
            raise ConfigError(f"space.{key}: range start and stop must be numbers")
        values, v = [], start
        if "step" in spec:
            if not spec["step"] > 0:
                raise ConfigError(f"space.{key}: step must be positive, not {spec['step']!r}")
            while v <= stop:
                values.append(v)
                v = v + spec["step"]
        else:
            if not spec["factor"] > 1 or not start > 0:
                raise ConfigError(f"space.{key}: a geometric range needs start > 0 and factor > 1")
            while v <= stop:
                values.append(v)
                v = v * spec["factor"]
        if not values:
            raise ConfigError(f"space.{key}: empty range (start {start} > stop {stop})")
        return tuple(values)
    values = tuple(spec) if isinstance(spec, list) else (spec,)
    if not values:
        raise ConfigError(f"space.{key}: empty list of values")
    if len(set(map(str, values))) != len(values):
        raise ConfigError(f"space.{key}: values repeat: {list(values)}")
    return values


def _normalize_axis(key: str, values: tuple) -> list[tuple[str, tuple]]:
    """Aliases -> real axes; values checked by building a config with each."""
    if key == "array":
        pairs = tuple(parse_array(v) for v in values)
        return [("rows,cols", pairs)]
    if key == "sram_kib":
        return [("sram_kib", values)]
    if key == "dataflow":
        return [(key, tuple(parse_dataflow(v) for v in values))]
    return [(key, values)]


def _check_values(key: str, values: tuple, base: AcceleratorConfig) -> None:
    for v in values:
        try:
            if key in ("weight_bits", "act_bits"):
                QuantConfig(**{key: v})
            elif key == "batch":
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise ConfigError(f"{v!r}: must be a positive integer")
            elif key == "rows,cols":
                override(base, rows=v[0], cols=v[1])
            elif key == "sram_kib":
                override(base, ifmap_sram_kib=v, filter_sram_kib=v, ofmap_sram_kib=v)
            else:
                override(base, **{key: v})
        except HwsimError as err:
            raise ConfigError(f"space.{key.split(',')[0] if key != 'rows,cols' else 'array'}: {err}") from None


def parse_space(doc: dict, cli_axes: Iterable[str] = ()) -> Space:
    doc = dict(doc)
    sections = {k: doc.pop(k) for k in SECTIONS if k in doc}
    for k, v in sections.items():
        if not isinstance(v, dict):
            raise ConfigError(f"{k}: must be a table ([{k}])")
    try:
        fixed = {k: doc.pop(k) for k in list(doc) if k in BASE_KEYS}
        base = override(preset(doc.pop("preset", DEFAULT_PRESET)), **fixed)
    except ConfigError as err:
        raise ConfigError(f"base config: {err}") from None
    if doc:
        key = sorted(doc)[0]
        raise ConfigError(f"unknown key {key!r}: top-level keys are preset and accelerator config keys; "
                          f"sections are {', '.join(f'[{s}]' for s in SECTIONS)}")
    raw = dict(sections.get("space", {}))
    for item in cli_axes:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"--axis {item!r}: expected KEY=V1,V2,... e.g. --axis array=8x8,16x16")
        raw[name.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    axes: list[tuple[str, tuple]] = []
    for key, spec in raw.items():
        if key not in AXES and key not in ALIASES:
            raise ConfigError(f"space.{key}: unknown axis; axes are {', '.join((*AXES, *ALIASES))}")
        try:
            normalized = _normalize_axis(key, _expand(key, spec))
        except ConfigError as err:
            message = str(err)
            raise ConfigError(message if message.startswith("space.") else f"space.{key}: {message}") from None
        for name, values in normalized:
            _check_values(name, values, base)
            axes.append((name, values))
    names = [n for n, _ in axes]
    for a, b in (("rows,cols", "rows"), ("rows,cols", "cols"), ("sram_kib", "ifmap_sram_kib"),
                 ("sram_kib", "filter_sram_kib"), ("sram_kib", "ofmap_sram_kib")):
        if a in names and b in names:
            raise ConfigError(f"space.{b}: give {b} or {'array' if a == 'rows,cols' else a}, not both")
    if not axes:
        raise ConfigError("space: no axes to sweep; add a [space] table or --axis KEY=V1,V2")
    constraints = _strings(sections.get("constraints", {}), "constraints", "require")
    pareto = sections.get("pareto", {})
    minimize = _strings(pareto, "pareto", "minimize", DEFAULT_MINIMIZE)
    maximize = _strings(pareto, "pareto", "maximize", DEFAULT_MAXIMIZE)
    accuracy = sections.get("accuracy", {})
    _only(accuracy, "accuracy", ("images",))
    images = accuracy.get("images", DEFAULT_IMAGES)
    if not isinstance(images, int) or isinstance(images, bool) or images < 0:
        raise ConfigError(f"accuracy.images = {images!r}: must be a non-negative integer (0 = no accuracy)")
    for c in constraints:
        Constraint(c)  # syntax and names checked now
    return Space(base, tuple(axes), constraints, minimize, maximize, images)


def _only(table: dict, section: str, keys: tuple[str, ...]) -> None:
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}: unknown key; [{section}] takes {', '.join(keys)}")


def _strings(table: dict, section: str, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    _only(table, section, ("require",) if section == "constraints" else ("minimize", "maximize"))
    value = table.get(key, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{section}.{key}: must be a list of strings")
    return tuple(value)


def load_space(path: str | Path | None, cli_axes: Iterable[str] = ()) -> Space:
    doc: dict = {}
    if path is not None:
        path = Path(path)
        doc = read_toml(path, "space")
    try:
        return parse_space(doc, cli_axes)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}" if path is not None else str(err)) from None


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.In: lambda a, b: a in b,
           ast.NotIn: lambda a, b: a not in b}


class Constraint:
    """A boolean expression over a point's names: arithmetic, comparisons (chained), and/or/not,
    numbers, strings and tuples. Parsed once with `ast`; nothing else is evaluated."""

    def __init__(self, text: str):
        self.text = text
        try:
            self.tree = ast.parse(text, mode="eval").body
        except SyntaxError:
            raise ConfigError(f"constraints.require: {text!r} is not an expression") from None
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name) and node.id not in NAMES:
                raise ConfigError(f"constraints.require: {text!r} uses unknown name {node.id!r}; "
                                  f"names are {', '.join(NAMES)}")
            if not isinstance(node, ast.expr | ast.operator | ast.cmpop | ast.boolop | ast.unaryop | ast.expr_context):
                raise ConfigError(f"constraints.require: {text!r}: unsupported syntax")

    def __call__(self, names: dict[str, Any]) -> bool:
        return bool(self._eval(self.tree, names))

    def _eval(self, node: ast.AST, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
            return node.value
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.Tuple | ast.List):
            return tuple(self._eval(e, env) for e in node.elts)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
            v = self._eval(node.operand, env)
            return (not v) if isinstance(node.op, ast.Not) else -v
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, env) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare) and all(type(op) in _CMPOPS for op in node.ops):
            left = self._eval(node.left, env)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self._eval(right_node, env)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        raise ConfigError(f"constraints.require: {self.text!r}: unsupported expression {ast.unparse(node)!r}")


def _point(base: AcceleratorConfig, values: dict[str, Any]) -> Point:
    cfg_values: dict[str, Any] = {}
    extra = {"weight_bits": 8, "act_bits": 8, "batch": 1}
    for name, v in values.items():
        if name == "rows,cols":
            cfg_values["rows"], cfg_values["cols"] = v
        elif name == "sram_kib":
            cfg_values.update(ifmap_sram_kib=v, filter_sram_kib=v, ofmap_sram_kib=v)
        elif name in extra:
            extra[name] = v
        else:
            cfg_values[name] = v
    return Point(replace(base, **cfg_values), **extra)


def points(space: Space) -> list[Point]:
    """The grid in a fixed order, filtered by the constraints; an empty result names the constraint
    that emptied it."""
    names = [n for n, _ in space.axes]
    grid = [_point(space.base, dict(zip(names, combo, strict=True)))
            for combo in itertools.product(*(values for _, values in space.axes))]
    for text in space.constraints:
        check = Constraint(text)
        try:
            kept = [p for p in grid if check(p.names())]
        except (TypeError, ZeroDivisionError) as err:
            raise ConfigError(f"constraints.require: {text!r} cannot be evaluated ({err})") from None
        if not kept:
            before = [c for c in space.constraints[:space.constraints.index(text)]]
            raise ConfigError(f"constraints.require: {text!r} leaves no points"
                              + (f" after {' and '.join(map(repr, before))}" if before else "")
                              + "; the constraints contradict each other or the space")
        grid = kept
    return grid
