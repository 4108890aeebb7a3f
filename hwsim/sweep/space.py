"""The design space of a sweep: a TOML file (and/or --axis KEY=V1,V2 on the command line)
expanded into a list of points, filtered by constraints. Every mistake is one ConfigError
that names the key.

    preset = "edge8"                  # the base config; top-level AcceleratorConfig keys fix values
    clock_mhz = 200

    [space]                           # each axis: a list, or a range table
    rows = [8, 16, 32]                #   {start = 8, stop = 64, step = 8}   (stop included)
    cols = {start = 4, stop = 64, factor = 2}   #   geometric: 4, 8, 16, 32, 64
    dataflow = ["os", "ws", "is"]
    sram_kib = [32, 64, 128]          # ifmap, filter and ofmap; or ifmap_sram_kib / ... / acc_sram_kib
    dram_latency_cycles = [10, 100]   # also dram_request_bytes, dram_bytes_per_cycle, vector_lanes, ...
    weight_bits = [8, 6, 4]

    [constraints]
    require = ["rows * cols <= 4096", "rows <= 4 * cols"]

    [pareto]                          # default: minimize latency_us, pes, sram_kib_total;
    minimize = ["latency_us", "pes"]  #          maximize int8_top1_pct
    maximize = ["int8_top1_pct"]

    [accuracy]
    images = 1000                     # test images per distinct bit width (default 1000)

    [limits]
    max_points = 1000000              # the grid (before constraints) may hold at most this many points

The grid's size is counted from the axes before anything is enumerated: a range that does not
advance (a step lost to float rounding), a non-finite bound, or a grid past [limits] max_points
(default 1,000,000) is refused. Constraints are evaluated by a bounded interpreter: small
exponents, short strings and tuples, results within 2**64, and limited size and nesting.
"""
from __future__ import annotations

import ast
import itertools
import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from hwsim.config import (
    DEFAULT_PRESET,
    AcceleratorConfig,
    Dataflow,
    check_batch,
    override,
    parse_array,
    parse_dataflow,
    preset,
    read_toml,
)
from hwsim.sweep.store import parse_value
from quant.errors import ConfigError, HwsimError
from quant.quantize import QuantConfig

CONFIG_AXES = ("rows", "cols", "dataflow", "ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib", "acc_sram_kib",
               "dram_bytes_per_cycle", "dram_latency_cycles", "dram_request_bytes", "clock_mhz", "acc_bits",
               "vector_lanes")
AXES = (*CONFIG_AXES, "weight_bits", "act_bits", "batch")
ALIASES = ("array", "sram_kib")  # array = "16x16" -> rows, cols; sram_kib -> ifmap, filter and ofmap (not acc)
BASE_KEYS = {*(f.name for f in fields(AcceleratorConfig) if f.name != "name"), "array", "sram"}
SECTIONS = ("space", "constraints", "pareto", "accuracy", "limits")
DEFAULT_MINIMIZE = ("latency_us", "pes", "sram_kib_total")
DEFAULT_MAXIMIZE = ("int8_top1_pct",)
DEFAULT_IMAGES = 1000
DEFAULT_MAX_POINTS = 1_000_000  # a grid past this is refused before it is built; [limits] max_points raises it


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
        return (f"{c.rows}x{c.cols}-{c.dataflow.value}-{c.ifmap_sram_kib}/{c.filter_sram_kib}/{c.ofmap_sram_kib}/"
                f"{c.acc_sram_kib}KiB-bw{c.dram_bytes_per_cycle:g}-lat{c.dram_latency_cycles}-req{c.dram_request_bytes}"
                f"-{c.clock_mhz:g}MHz-acc{c.acc_bits}-l{c.vector_lanes}"
                f"-w{self.weight_bits}a{self.act_bits}-b{self.batch}")

    def names(self) -> dict[str, Any]:
        """The values constraints and the results table see."""
        c = self.config
        return {**{a: getattr(c, a) for a in CONFIG_AXES}, "dataflow": c.dataflow.value, "pes": c.pes,
                "sram_kib_total": c.sram_kib_total,
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
    max_points: int = DEFAULT_MAX_POINTS  # not part of to_dict: raising the limit keeps a sweep resumable

    @property
    def size(self) -> int:
        """Points in the grid before the constraints, counted without building it."""
        return math.prod(len(values) for _, values in self.axes)

    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), "axes": {k: [v.value if isinstance(v, Dataflow) else v for v in vs]
                                                     for k, vs in self.axes},
                "constraints": list(self.constraints), "minimize": list(self.minimize),
                "maximize": list(self.maximize), "images": self.images}


def _number(key: str, name: str, v: Any) -> int | float:
    if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
        raise ConfigError(f"space.{key}: range {name} must be a finite number, not {v!r}")
    return v


def _expand(key: str, spec: Any, max_points: int) -> tuple:
    """A list, a scalar, or a {start, stop, step|factor} range -> a non-empty tuple of values. A range is
    counted before it is enumerated: one that does not advance or holds more than max_points values is
    refused."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"start", "stop", "step", "factor"})
        if unknown or "start" not in spec or "stop" not in spec or ("step" in spec) == ("factor" in spec):
            raise ConfigError(f"space.{key}: a range is {{start, stop, step}} or {{start, stop, factor}}"
                              + (f" (unknown key {unknown[0]!r})" if unknown else ""))
        start, stop = _number(key, "start", spec["start"]), _number(key, "stop", spec["stop"])
        if "step" in spec:
            step = _number(key, "step", spec["step"])
            if not step > 0:
                raise ConfigError(f"space.{key}: step must be positive, not {step!r}")
            span = (stop - start) / step if stop >= start else -1.0
            advance = operator.add
            grow = step
        else:
            factor = _number(key, "factor", spec["factor"])
            if not factor > 1 or not start > 0:
                raise ConfigError(f"space.{key}: a geometric range needs start > 0 and factor > 1")
            span = math.log(stop / start) / math.log(factor) if stop >= start else -1.0
            advance = operator.mul
            grow = factor
        if not span < max_points:  # inf and nan too (a span that overflows)
            raise ConfigError(f"space.{key}: the range holds {_about(span + 1)} values, more than the limit of "
                              f"{max_points:,} points (--max-points or [limits] max_points raises it)")
        count = math.floor(span) + 1
        values, v = [], start
        while v <= stop and len(values) <= count:  # count + 1 values at most: float rounding in the count
            values.append(v)
            nxt = advance(v, grow)
            if not nxt > v:
                raise ConfigError(f"space.{key}: the range does not advance past {v!r} "
                                  f"({'step' if advance is operator.add else 'factor'} {grow!r} is lost "
                                  "to floating-point rounding)")
            v = nxt
        if not values:
            raise ConfigError(f"space.{key}: empty range (start {start} > stop {stop})")
        return tuple(values)
    values = tuple(spec) if isinstance(spec, list) else (spec,)
    if not values:
        raise ConfigError(f"space.{key}: empty list of values")
    if len(values) > max_points:
        raise ConfigError(f"space.{key}: {len(values):,} values, more than the limit of {max_points:,} points "
                          "(--max-points or [limits] max_points raises it)")
    if len(set(map(str, values))) != len(values):
        seen: set[str] = set()
        repeated = next(v for v in values if str(v) in seen or seen.add(str(v)))
        raise ConfigError(f"space.{key}: values repeat: {repeated!r} is given twice")
    return values


def _about(n: float) -> str:
    """A count for a message: exact below 10^15, else its order of magnitude."""
    if not math.isfinite(n):
        return "more than 10^308"
    return f"{int(n):,}" if n < 1e15 else f"about 10^{math.floor(math.log10(n))}"


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
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{v!r}: must be a finite number")
            if key in ("weight_bits", "act_bits"):
                QuantConfig(**{key: v})
            elif key == "batch":
                check_batch(v)
            elif key == "rows,cols":
                override(base, rows=v[0], cols=v[1])
            elif key == "sram_kib":
                override(base, ifmap_sram_kib=v, filter_sram_kib=v, ofmap_sram_kib=v)
            else:
                override(base, **{key: v})
        except HwsimError as err:
            raise ConfigError(f"space.{key.split(',')[0] if key != 'rows,cols' else 'array'}: {err}") from None


def parse_space(doc: dict, cli_axes: Iterable[str] = (), max_points: int | None = None) -> Space:
    doc = dict(doc)
    sections = {k: doc.pop(k) for k in SECTIONS if k in doc}
    for k, v in sections.items():
        if not isinstance(v, dict):
            raise ConfigError(f"{k}: must be a table ([{k}])")
    limits = sections.get("limits", {})
    _only(limits, "limits", ("max_points",))
    max_points = limits.get("max_points", DEFAULT_MAX_POINTS) if max_points is None else max_points
    if not isinstance(max_points, int) or isinstance(max_points, bool) or max_points < 1:
        raise ConfigError(f"limits.max_points = {max_points!r}: must be a positive integer")
    name = doc.pop("preset", DEFAULT_PRESET)
    if not isinstance(name, str):
        raise ConfigError(f"preset = {name!r}: must be a preset name string, e.g. preset = \"{DEFAULT_PRESET}\"")
    try:
        fixed = {k: doc.pop(k) for k in list(doc) if k in BASE_KEYS}
        base = override(preset(name), **fixed)  # validate() refuses non-finite values
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
            normalized = _normalize_axis(key, _expand(key, spec, max_points))
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
    check_size(axes, max_points)
    constraints = _strings(sections.get("constraints", {}), "constraints", "require")
    pareto = sections.get("pareto", {})
    minimize = _strings(pareto, "pareto", "minimize", DEFAULT_MINIMIZE)
    maximize = _strings(pareto, "pareto", "maximize", DEFAULT_MAXIMIZE)
    _check_objectives(minimize, maximize)
    accuracy = sections.get("accuracy", {})
    _only(accuracy, "accuracy", ("images",))
    images = accuracy.get("images", DEFAULT_IMAGES)
    if not isinstance(images, int) or isinstance(images, bool) or images < 0:
        raise ConfigError(f"accuracy.images = {images!r}: must be a non-negative integer (0 = no accuracy)")
    for c in constraints:
        Constraint(c)  # syntax and names checked now
    return Space(base, tuple(axes), constraints, minimize, maximize, images, max_points)


def _check_objectives(minimize: tuple[str, ...], maximize: tuple[str, ...]) -> None:
    from hwsim.sweep.evaluate import COLUMNS  # imports this module: imported here, when both are loaded
    numeric = [c for c in COLUMNS if c not in ("point", "dataflow", "status")]
    for key, names in (("minimize", minimize), ("maximize", maximize)):
        for name in names:
            if name not in numeric:
                raise ConfigError(f"pareto.{key}: {name!r} is not a numeric result column; "
                                  f"choose from {', '.join(numeric)}")


def check_size(axes: Iterable[tuple[str, tuple]], max_points: int) -> None:
    """Refuse a grid of more than max_points points, counted from the axes' lengths without building it."""
    lengths = [(name, len(values)) for name, values in axes]
    size = math.prod(n for _, n in lengths)
    if size > max_points:
        product = " x ".join(f"{n:,} {'array' if name == 'rows,cols' else name}" for name, n in lengths)
        raise ConfigError(f"space: {size:,} points ({product}) is more than the limit of {max_points:,}; "
                          "narrow the axes, or raise it with --max-points N or [limits] max_points = N")


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


def load_space(path: str | Path | None, cli_axes: Iterable[str] = (), max_points: int | None = None) -> Space:
    """The space of a TOML file and/or --axis texts; max_points (--max-points) overrides [limits] max_points."""
    doc: dict = {}
    if path is not None:
        path = Path(path)
        doc = read_toml(path, "space")
    try:
        return parse_space(doc, cli_axes, max_points)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}" if path is not None else str(err)) from None


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.In: lambda a, b: a in b,
           ast.NotIn: lambda a, b: a not in b}
# Bounds of the constraint evaluator: every evaluation is small and quick, whatever the text.
MAX_CONSTRAINT_CHARS = 1000
MAX_CONSTRAINT_NODES = 200
MAX_CONSTRAINT_DEPTH = 50
MAX_MAGNITUDE = 2**64  # |int| and |float| results
MAX_EXPONENT = 64
MAX_SEQUENCE = 1000  # characters of a string, items of a tuple


class Constraint:
    """A boolean expression over a point's names: arithmetic, comparisons (chained), and/or/not,
    numbers, strings and tuples. Parsed once with `ast`; nothing else is evaluated, and the evaluation
    is bounded: the text's size and nesting, exponents, repetition and the magnitude of every result."""

    def __init__(self, text: str):
        self.text = text
        self.label = repr(text) if len(text) <= 80 else f"{text[:60]!r}..."  # how messages quote it
        if len(text) > MAX_CONSTRAINT_CHARS:
            raise ConfigError(f"constraints.require: {self.label}: longer than {MAX_CONSTRAINT_CHARS} characters")
        try:
            self.tree = ast.parse(text, mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise ConfigError(f"constraints.require: {self.label} is not an expression (or nests too deeply)") from None
        nodes = list(ast.walk(self.tree))
        if len(nodes) > MAX_CONSTRAINT_NODES or _depth(self.tree) > MAX_CONSTRAINT_DEPTH:
            raise ConfigError(f"constraints.require: {self.label} is too complex (at most {MAX_CONSTRAINT_NODES} "
                              f"syntax nodes nested {MAX_CONSTRAINT_DEPTH} deep)")
        for node in nodes:
            if isinstance(node, ast.Name) and node.id not in NAMES:
                raise ConfigError(f"constraints.require: {self.label} uses unknown name {node.id!r}; "
                                  f"names are {', '.join(NAMES)}")
            if not isinstance(node, ast.expr | ast.operator | ast.cmpop | ast.boolop | ast.unaryop | ast.expr_context):
                raise ConfigError(f"constraints.require: {self.label}: unsupported syntax")

    def __call__(self, names: dict[str, Any]) -> bool:
        try:
            return bool(self._eval(self.tree, names))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, ArithmeticError) as err:
            raise ConfigError(f"constraints.require: {self.label} cannot be evaluated ({err})") from None

    def _fail(self, why: str) -> ConfigError:
        return ConfigError(f"constraints.require: {self.label}: {why}")

    def _eval(self, node: ast.AST, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
            return self._bounded(node.value)
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.Tuple | ast.List):
            return self._bounded(tuple(self._eval(e, env) for e in node.elts))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return self._binop(node.op, self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
            v = self._eval(node.operand, env)
            return (not v) if isinstance(node.op, ast.Not) else self._bounded(-_number_only(v))
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
        raise self._fail(f"unsupported expression {ast.unparse(node)!r}")

    def _binop(self, op: ast.operator, a: Any, b: Any) -> Any:
        """Numbers with numbers; + joins two strings or two tuples, * repeats one by an int; each result
        bounded before it is computed where it could be huge (powers, repetition)."""
        if isinstance(op, ast.Pow):
            a, b = _number_only(a), _number_only(b)
            if abs(b) > MAX_EXPONENT:
                raise self._fail(f"exponent {b!r} is out of range (at most {MAX_EXPONENT})")
            if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a).bit_length() * b > 64 * 4:
                raise self._fail(f"{a!r} ** {b!r} is too large")
        elif isinstance(op, ast.Mult) and (isinstance(a, str | tuple) or isinstance(b, str | tuple)):
            seq, n = (a, b) if isinstance(a, str | tuple) else (b, a)
            if not isinstance(n, int) or isinstance(n, bool):
                raise TypeError(f"can only repeat a string or tuple by an integer, not {n!r}")
            if len(seq) * max(n, 0) > MAX_SEQUENCE:
                raise self._fail(f"repetition longer than {MAX_SEQUENCE}")
        elif not (isinstance(op, ast.Add) and type(a) is type(b) and isinstance(a, str | tuple)):
            a, b = _number_only(a), _number_only(b)
        result = _BINOPS[type(op)](a, b)
        if isinstance(result, complex):
            raise self._fail(f"({a!r}) ** {b!r} is not a real number")
        return self._bounded(result)

    def _bounded(self, v: Any) -> Any:
        if isinstance(v, float) and not (math.isfinite(v) and abs(v) <= MAX_MAGNITUDE):
            raise self._fail(f"a value ({v!r}) is out of range (finite, at most 2**64 in magnitude)")
        if isinstance(v, int) and abs(v) > MAX_MAGNITUDE:
            raise self._fail(f"a value ({v!r}) is out of range (at most 2**64 in magnitude)")
        if isinstance(v, str | tuple) and len(v) > MAX_SEQUENCE:
            raise self._fail(f"a string or tuple longer than {MAX_SEQUENCE}")
        return v


def _number_only(v: Any) -> int | float:
    if not isinstance(v, int | float):
        raise TypeError(f"arithmetic needs numbers, not {type(v).__name__} {v!r}"[:200])
    return v


def _depth(tree: ast.AST) -> int:
    """Nesting depth of a syntax tree, without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


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
    check_size(space.axes, space.max_points)
    names = [n for n, _ in space.axes]
    grid = [_point(space.base, dict(zip(names, combo, strict=True)))
            for combo in itertools.product(*(values for _, values in space.axes))]
    for text in space.constraints:
        check = Constraint(text)
        kept = [p for p in grid if check(p.names())]
        if not kept:
            before = [c for c in space.constraints[:space.constraints.index(text)]]
            raise ConfigError(f"constraints.require: {text!r} leaves no points"
                              + (f" after {' and '.join(map(repr, before))}" if before else "")
                              + "; the constraints contradict each other or the space")
        grid = kept
    return grid
