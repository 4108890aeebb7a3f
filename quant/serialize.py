"""Save/load a (quantized) IR graph as one .npz: arrays stored natively, the
structure as JSON. No pickle: loading never executes code from the file."""
from __future__ import annotations

import dataclasses
import enum
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from quant import calibrate, ir
from quant.errors import ConfigError, ModelFormatError

FORMAT = "hwsim-ir/1"
_TYPES = {cls.__name__: cls for cls in (
    ir.Graph, ir.Node, ir.NodeQuant, ir.Requant, ir.QParams, ir.Clamp, ir.ConvAttrs, ir.DenseAttrs,
    ir.PoolAttrs, ir.ActAttrs, ir.AddAttrs, ir.PadAttrs, ir.NoAttrs)}
_ENUMS = {cls.__name__: cls for cls in (ir.Op, ir.ActKind, calibrate.Method)}


def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if dataclasses.is_dataclass(obj):
        fields = {f.name: _encode(getattr(obj, f.name), arrays) for f in dataclasses.fields(obj)}
        return {"__type__": type(obj).__name__, **fields}
    if isinstance(obj, enum.Enum):
        return {"__enum__": type(obj).__name__, "value": obj.value}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, float) and not np.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def _decode(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        return arrays[obj["__array__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, arrays) for v in obj["__tuple__"])
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__enum__" in obj:
        return _ENUMS[obj["__enum__"]](obj["value"])
    cls = _TYPES[obj["__type__"]]
    return cls(**{k: _decode(v, arrays) for k, v in obj.items() if k != "__type__"})


def save_graph(graph: ir.Graph, path: str | Path, meta: dict | None = None) -> Path:
    """Write atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    doc = {"format": FORMAT, "graph": _encode(graph, arrays), "meta": meta or {}}
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    except OSError as err:
        raise ConfigError(f"{path}: cannot write there ({err.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, __doc__=np.array(json.dumps(doc)), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_graph(path: str | Path) -> tuple[ir.Graph, dict]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            doc = json.loads(str(data["__doc__"]))
            if doc.get("format") != FORMAT:
                raise ModelFormatError(f"{path}: not an {FORMAT} file")
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError) as err:
        raise ModelFormatError(f"{path}: not a saved hwsim graph ({type(err).__name__})") from None
    return _decode(doc["graph"], arrays), doc["meta"]
