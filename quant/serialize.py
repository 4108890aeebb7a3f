"""Save/load a (quantized) IR graph as one .npz: arrays stored natively, the
structure as JSON. No pickle: loading never executes code from the file.

A saved file carries a SHA-256 digest of its content (the JSON document and
every array's name, dtype, shape and bytes). `load_graph` recomputes it and
refuses a file that was edited or corrupted after hwsim wrote it — a check
against accidents and hand edits, not a signature: whoever edits the file can
rewrite the digest too, which is why every loaded graph also goes through the IR
verifier (`quant.verify`). Loading is defensive: the zip members' declared sizes
are capped (MAX_UNCOMPRESSED_BYTES) before anything is read, arrays must be
plain numeric, and every field is type-checked against the IR's dataclasses, so
a malformed file raises ModelFormatError (one line), never a traceback.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import math
import os
import tempfile
import types
import typing
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from quant import calibrate, ir
from quant.errors import ConfigError, IRError, ModelFormatError
from quant.verify import verify

FORMAT = "hwsim-ir/2"  # /2: adds the content digest
_OLD_FORMATS = ("hwsim-ir/1",)
DOC, DIGEST = "__doc__", "__sha256__"
MAX_UNCOMPRESSED_BYTES = 1 << 30  # 1 GiB of declared member sizes: far above any model hwsim maps
_TYPES = {cls.__name__: cls for cls in (
    ir.Graph, ir.Node, ir.NodeQuant, ir.Requant, ir.QParams, ir.Clamp, ir.ConvAttrs, ir.DenseAttrs,
    ir.PoolAttrs, ir.ActAttrs, ir.AddAttrs, ir.PadAttrs, ir.NoAttrs, ir.SliceAttrs, ir.ShuffleAttrs, ir.ResizeAttrs,
    ir.ZeroInsertAttrs, ir.AffineAttrs)}
_ENUMS = {cls.__name__: cls for cls in (ir.Op, ir.ActKind, calibrate.Method)}
_TEXT_MEMBERS = (DOC, DIGEST)


class _Malformed(Exception):
    """Raised while decoding; load_graph turns it into one ModelFormatError line."""


def content_digest(doc_json: str, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the JSON document and every array (name, dtype, shape, C-order bytes)."""
    h = hashlib.sha256(doc_json.encode("utf-8"))
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# --- encoding --------------------------------------------------------------------------------------

def _encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if dataclasses.is_dataclass(obj):
        if _TYPES.get(type(obj).__name__) is not type(obj):
            raise TypeError(f"cannot save a {type(obj).__name__}: not an IR type")
        fields = {f.name: _encode(getattr(obj, f.name), arrays) for f in dataclasses.fields(obj)}
        return {"__type__": type(obj).__name__, **fields}
    if isinstance(obj, enum.Enum):
        return {"__enum__": type(obj).__name__, "value": obj.value}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def save_graph(graph: ir.Graph, path: str | Path, meta: dict | None = None) -> Path:
    """Verify, then write atomically (a temporary file in the same folder, then rename) with the
    permissions of a normal new file (0666 less the umask)."""
    path = Path(path)
    verify(graph)
    arrays: dict[str, np.ndarray] = {}
    doc_json = json.dumps({"format": FORMAT, "graph": _encode(graph, arrays), "meta": meta or {}}, allow_nan=False)
    digest = content_digest(doc_json, arrays)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    except OSError as err:
        raise ConfigError(f"{path}: cannot write there ({err.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **{DOC: np.array(doc_json), DIGEST: np.array(digest)}, **arrays)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- reading ---------------------------------------------------------------------------------------

def load_graph(path: str | Path) -> tuple[ir.Graph, dict]:
    """Read, check the digest, decode and verify a graph written by save_graph; returns (graph, meta)."""
    path = Path(path)
    try:
        members = _read_members(path)
        doc_json = str(members.pop(DOC))
        digest = str(members.pop(DIGEST, ""))
        doc = json.loads(doc_json, parse_constant=_no_constant)
        if not isinstance(doc, dict) or not isinstance(doc.get("format"), str):
            raise _Malformed(f"not an {FORMAT} file")
        if doc["format"] in _OLD_FORMATS:
            raise _Malformed(f"written by an older hwsim ({doc['format']}, no content digest); "
                             "quantize the model again")
        if doc["format"] != FORMAT:
            raise _Malformed(f"format {doc['format']!r} is not {FORMAT}")
        if digest != content_digest(doc_json, members):
            raise ModelFormatError(f"{path}: has been modified since hwsim saved it (content digest mismatch)")
        if set(doc) != {"format", "graph", "meta"} or not isinstance(doc["meta"], dict):
            raise _Malformed("the document must hold exactly format, graph and meta (an object)")
        graph = _decode(doc["graph"], members, ir.Graph, "graph")
        verify(graph)
    except IRError as err:
        raise IRError(f"{path}: {err}") from None
    except _Malformed as err:
        raise ModelFormatError(f"{path}: not a valid saved hwsim graph: {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, ValueError, NotImplementedError,
            RuntimeError, MemoryError) as err:  # RuntimeError: encrypted member, RecursionError (deep JSON)
        raise ModelFormatError(f"{path}: not a saved hwsim graph ({type(err).__name__}: {err})") from None
    return graph, doc["meta"]


def _no_constant(name: str) -> None:
    raise _Malformed(f"JSON constant {name} (non-finite numbers are stored as {{'__float__': ...}})")


def _read_members(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise _Malformed(f"its members declare {total} bytes uncompressed, over the "
                             f"{MAX_UNCOMPRESSED_BYTES}-byte cap")
        members = {}
        for info in infos:
            name = info.filename.removesuffix(".npy")
            if name == info.filename or name in members:
                raise _Malformed(f"unexpected member {info.filename!r}")
            with zf.open(info) as f:
                members[name] = _read_npy(f, name, info.file_size)
    if DOC not in members:
        raise _Malformed(f"no {DOC} member")
    return members


def _read_npy(f: BinaryIO, name: str, size: int) -> np.ndarray:
    """One .npy member: a plain numeric array (text only for the document and the digest)."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise _Malformed(f"member {name!r}: .npy version {version} is not supported")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(f)
    text = name in _TEXT_MEMBERS
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or \
            dtype.kind not in ("U" if text else "biuf") or (text and shape != ()):
        raise _Malformed(f"member {name!r}: dtype {dtype} shape {shape} is not allowed")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > size:
        raise _Malformed(f"member {name!r}: header declares {nbytes} bytes, the member holds at most {size}")
    data = f.read(nbytes)
    if len(data) != nbytes:
        raise _Malformed(f"member {name!r} is truncated")
    return np.frombuffer(bytearray(data), dtype=dtype).reshape(shape, order="F" if fortran else "C")


# --- decoding --------------------------------------------------------------------------------------

def _decode(obj: Any, arrays: dict[str, np.ndarray], hint: Any, where: str) -> Any:
    """JSON value -> the IR value of type `hint`, checked on the way; `where` names it in errors."""
    value = _decode_any(obj, arrays, hint, where)
    if not _has_type(value, hint):
        raise _Malformed(f"{where}: {_describe(value)} is not a valid {_hint_name(hint)}")
    return value


def _decode_any(obj: Any, arrays: dict[str, np.ndarray], hint: Any, where: str) -> Any:
    if isinstance(obj, list):
        raise _Malformed(f"{where}: bare JSON lists are never written (tuples are {{'__tuple__': [...]}})")
    if not isinstance(obj, dict):
        return float(obj) if hint is float and type(obj) is int else obj
    kind = [k for k in ("__array__", "__tuple__", "__float__", "__enum__", "__type__") if k in obj]
    if len(kind) != 1:
        raise _Malformed(f"{where}: an object with keys {sorted(obj)} is not an encoded value")
    kind = kind[0]
    if kind == "__type__":
        return _decode_dataclass(obj, arrays, where)
    if kind == "__enum__":
        return _decode_enum(obj, where)
    if set(obj) != {kind}:
        raise _Malformed(f"{where}: unexpected keys {sorted(set(obj) - {kind})}")
    payload = obj[kind]
    if kind == "__array__":
        if not isinstance(payload, str) or payload in _TEXT_MEMBERS or payload not in arrays:
            raise _Malformed(f"{where}: refers to a missing array {payload!r}")
        return arrays[payload]
    if kind == "__float__":
        if payload not in ("inf", "-inf", "nan"):
            raise _Malformed(f"{where}: {payload!r} is not a non-finite float")
        return float(payload)
    if not isinstance(payload, list):
        raise _Malformed(f"{where}: __tuple__ must hold a list")
    item_hints = _tuple_item_hints(hint, len(payload))
    return tuple(_decode(v, arrays, h, f"{where}[{i}]") for i, (v, h) in enumerate(zip(payload, item_hints,
                                                                                       strict=True)))


def _decode_enum(obj: dict, where: str) -> enum.Enum:
    cls = _ENUMS.get(obj["__enum__"]) if isinstance(obj["__enum__"], str) else None
    if cls is None or set(obj) != {"__enum__", "value"}:
        raise _Malformed(f"{where}: unknown enum {obj.get('__enum__')!r}")
    try:
        return cls(obj["value"])
    except (ValueError, TypeError):
        raise _Malformed(f"{where}: {obj['value']!r} is not a {cls.__name__}") from None


def _decode_dataclass(obj: dict, arrays: dict[str, np.ndarray], where: str) -> Any:
    cls = _TYPES.get(obj["__type__"]) if isinstance(obj["__type__"], str) else None
    if cls is None:
        raise _Malformed(f"{where}: unknown type {obj['__type__']!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(obj) - set(fields) - {"__type__"}
    if unknown:
        raise _Malformed(f"{where}: {cls.__name__} has no field(s) {sorted(unknown)}")
    missing = [n for n, f in fields.items() if n not in obj and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise _Malformed(f"{where}: {cls.__name__} lacks field(s) {missing}")
    hints = _field_hints(cls)
    kwargs = {k: _decode(v, arrays, hints[k], f"{where}.{k}") for k, v in obj.items() if k != "__type__"}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise _Malformed(f"{where}: {err}") from None


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _union_args(hint: Any) -> tuple | None:
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else None


def _tuple_item_hints(hint: Any, n: int) -> list[Any]:
    options = _union_args(hint) or (hint,)
    for h in options:
        if typing.get_origin(h) is tuple:
            args = typing.get_args(h)
            if len(args) == 2 and args[1] is Ellipsis:
                return [args[0]] * n
            if len(args) == n:
                return list(args)
    return [Any] * n  # no tuple of this length fits: _has_type reports it


def _has_type(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    options = _union_args(hint)
    if options is not None:
        return any(_has_type(value, h) for h in options)
    if hint is type(None):
        return value is None
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_has_type(v, args[0]) for v in value)
        return len(args) == len(value) and all(_has_type(v, a) for v, a in zip(value, args, strict=True))
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, float)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this decoder does not model: the verifier checks the value


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("quant.ir.", "").replace("numpy.", "np.")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array {value.dtype} {value.shape}"
    return f"{type(value).__name__} {value!r}"[:80]
