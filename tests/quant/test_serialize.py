"""Saved graphs: round trip, file mode, tamper detection (digest), defensive decoding and
verification of what is loaded. Every malformed file is one ModelFormatError/IRError line."""
from __future__ import annotations

import json
import os
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from quant import serialize
from quant.errors import HwsimError, IRError, ModelFormatError
from quant.int_exec import run_int
from quant.serialize import content_digest, load_graph, save_graph

RNG = np.random.default_rng(2)


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    doc = json.loads(str(arrays.pop("__doc__")))
    arrays.pop("__sha256__")
    return doc, arrays


def _write(path: Path, doc: dict | str, arrays: dict, redigest: bool = True, digest: str | None = None) -> Path:
    """Rewrite a saved file; redigest=True recomputes the digest as a deliberate editor would."""
    doc_json = doc if isinstance(doc, str) else json.dumps(doc)
    if redigest:
        digest = content_digest(doc_json, {k: v for k, v in arrays.items() if v.dtype != object})
    extra = {} if digest is None else {"__sha256__": np.array(digest)}
    np.savez_compressed(path, __doc__=np.array(doc_json), **extra, **arrays)
    return path


def _node_doc(doc: dict, name: str) -> dict:
    return next(n for n in doc["graph"]["nodes"]["__tuple__"] if n["name"] == name)


def _array_key(doc: dict, name: str, *fields: str) -> str:
    obj = _node_doc(doc, name)
    for f in fields:
        obj = obj[f]
    return obj["__array__"]


@pytest.fixture
def saved(lenet_q, tmp_path) -> Path:
    return save_graph(lenet_q, tmp_path / "q.int8.npz", {"note": "x"})


def _one_line_error(path: Path, kind: type = ModelFormatError, match: str | None = None) -> str:
    with pytest.raises(kind, match=match) as err:
        load_graph(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    return str(err.value)


def test_roundtrip_every_op(every_op_q, lenet_q, tmp_path):
    for graph in (every_op_q, lenet_q):
        path = save_graph(graph, tmp_path / f"{graph.name}.int8.npz", {"k": [1, 2]})
        again, meta = load_graph(path)
        x = RNG.integers(-128, 128, (3, *graph.input_shape[1:])).astype(np.int8)
        assert meta == {"k": [1, 2]}
        assert np.array_equal(run_int(again, x, intermediate=False), run_int(graph, x))
        assert [n.attrs for n in again.nodes] == [n.attrs for n in graph.nodes]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_saved_file_has_normal_permissions(umask, lenet_q, tmp_path):
    old = os.umask(umask)
    try:
        path = save_graph(lenet_q, tmp_path / "q.npz")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_tampered_multiplier_is_detected(saved):
    doc, arrays = _read(saved)
    key = _array_key(doc, "node_conv2d", "quant", "requant", "m0")
    arrays[key] = arrays[key] + 1  # still a valid multiplier: only the digest can tell
    _write(saved, doc, arrays, redigest=False, digest=str(np.load(saved)["__sha256__"]))
    _one_line_error(saved, match="has been modified since hwsim saved it")


@pytest.mark.parametrize("edit", ["zero_point", "weight", "shift", "meta"])
def test_any_edit_breaks_the_digest(edit, saved):
    doc, arrays = _read(saved)
    digest = str(np.load(saved)["__sha256__"])
    if edit == "zero_point":
        _node_doc(doc, "node_linear")["quant"]["out"]["zero_point"] += 1
    elif edit == "weight":
        key = _array_key(doc, "node_linear_1", "quant", "weight")
        arrays[key] = arrays[key].copy()
        arrays[key][0, 0] ^= 1
    elif edit == "shift":
        key = _array_key(doc, "node_linear", "quant", "requant", "shift")
        arrays[key] = arrays[key].astype(np.int32)  # same values, another dtype
    else:
        doc["meta"]["note"] = "y"
    _one_line_error(_write(saved, doc, arrays, redigest=False, digest=digest), match="has been modified")


def test_missing_digest_is_refused(saved):
    doc, arrays = _read(saved)
    _one_line_error(_write(saved, doc, arrays, redigest=False), match="has been modified")


def test_old_format_is_refused_with_advice(saved):
    doc, arrays = _read(saved)
    doc["format"] = "hwsim-ir/1"
    _one_line_error(_write(saved, doc, arrays), match="older hwsim .*quantize the model again")


# Edits with a recomputed digest: the decoder and the verifier must still refuse them.
def _set_zero_point(doc, arrays):
    _node_doc(doc, "node_linear")["quant"]["requant"]["zero_point"] = 300


def _m0_out_of_range(doc, arrays):
    key = _array_key(doc, "node_conv2d", "quant", "requant", "m0")
    arrays[key] = np.full_like(arrays[key], 7)


def _shift_out_of_range(doc, arrays):
    key = _array_key(doc, "node_conv2d_1", "quant", "requant", "shift")
    arrays[key] = np.full_like(arrays[key], 70)


def _weight_reshaped(doc, arrays):
    key = _array_key(doc, "node_linear_1", "quant", "weight")
    arrays[key] = arrays[key][:, :-1].copy()


def _weight_as_float(doc, arrays):
    key = _array_key(doc, "node_linear_1", "quant", "weight")
    arrays[key] = arrays[key].astype(np.float32)


VERIFIER_EDITS = {
    "zero point": (_set_zero_point, "node 'node_linear' .Dense.: quant.requant.zero_point = 300"),
    "m0": (_m0_out_of_range, "node 'node_conv2d' .Conv.: quant.requant.m0 holds 7"),
    "shift": (_shift_out_of_range, "node 'node_conv2d_1' .Conv.: quant.requant.shift"),
    "weight shape": (_weight_reshaped, "node 'node_linear_1' .Dense.: quant.weight is int8 .10, 83."),
    "weight dtype": (_weight_as_float, "node 'node_linear_1' .Dense.: quant.weight must be an integer array"),
}


@pytest.mark.parametrize("edit", VERIFIER_EDITS)
def test_redigested_edits_are_refused_by_the_verifier(edit, saved):
    doc, arrays = _read(saved)
    change, match = VERIFIER_EDITS[edit]
    change(doc, arrays)
    _one_line_error(_write(saved, doc, arrays), IRError, match)


def _graph(doc):
    return doc["graph"]


MALFORMED = {
    "unknown type": (lambda d, a: _node_doc(d, "node_linear")["attrs"].update(__type__="Evil"), "unknown type 'Evil'"),
    "unknown enum": (lambda d, a: _node_doc(d, "node_linear")["op"].update(__enum__="Evil"), "unknown enum 'Evil'"),
    "enum value": (lambda d, a: _node_doc(d, "node_linear")["op"].update(value="Gemm"), "'Gemm' is not a Op"),
    "unknown field": (lambda d, a: _node_doc(d, "node_linear").update(colour=1), r"has no field\(s\) \['colour'\]"),
    "missing field": (lambda d, a: _node_doc(d, "node_linear").pop("output"), r"lacks field\(s\) \['output'\]"),
    "wrong json type": (lambda d, a: _node_doc(d, "node_linear").update(name=5), r"nodes\[6\].name: int 5"),
    "bool for int": (lambda d, a: _node_doc(d, "node_linear")["quant"]["out"].update(zero_point=True),
                     "out.zero_point: bool True"),
    "list for tuple": (lambda d, a: _node_doc(d, "node_linear").update(out_shape=[1, 84]), "bare JSON lists"),
    "tuple length": (lambda d, a: _node_doc(d, "node_conv2d")["attrs"].update(kernel={"__tuple__": [5]}),
                     "attrs.kernel"),
    "array for int": (lambda d, a: _node_doc(d, "node_linear")["quant"]["out"].update(bits={"__array__": "a0"}),
                      "out.bits: array"),
    "missing array": (lambda d, a: a.pop(_array_key(d, "node_linear", "weight")), "refers to a missing array"),
    "doc as array": (lambda d, a: _node_doc(d, "node_linear").update(weight={"__array__": "__doc__"}),
                     "refers to a missing array"),
    "bad float": (lambda d, a: _node_doc(d, "node_linear")["quant"]["out"].update(scale={"__float__": "1e999x"}),
                  "not a non-finite float"),
    "not an object": (lambda d, a: d.update(graph=3), "graph: int 3 is not a valid Graph"),
    "meta": (lambda d, a: d.update(meta=[1]), "meta"),
    "mixed keys": (lambda d, a: _node_doc(d, "node_linear").update(__tuple__=[]), "not an encoded value"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_documents_are_one_line_errors(case, saved):
    doc, arrays = _read(saved)
    change, match = MALFORMED[case]
    change(doc, arrays)
    _one_line_error(_write(saved, doc, arrays), match=match)


def test_nan_json_constant_is_refused(saved):
    doc, arrays = _read(saved)
    text = json.dumps(doc).replace('"scale": ', '"scale": NaN, "x": ', 1)
    _one_line_error(_write(saved, text, arrays), match="JSON constant NaN")


@pytest.mark.parametrize("array", [np.array([{"x": 1}], dtype=object), np.zeros(2, dtype=[("x", "i4")]),
                                   np.array(["text"])], ids=["object", "structured", "text"])
def test_object_structured_and_text_arrays_are_refused(array, saved):
    doc, arrays = _read(saved)
    arrays["a0"] = array
    _one_line_error(_write(saved, doc, arrays), match=re.escape(f"member 'a0': dtype {array.dtype}"))


def test_not_a_zip_truncated_and_foreign_members(saved, tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    _one_line_error(tmp_path / "text.npz", match="BadZipFile")
    data = saved.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    _one_line_error(tmp_path / "cut.npz", match="not a saved hwsim graph")
    with zipfile.ZipFile(saved, "a") as zf:
        zf.writestr("readme.txt", "hi")
    _one_line_error(saved, match="unexpected member 'readme.txt'")


@pytest.mark.parametrize("offset", [0, 7, 40, 200])
def test_corrupt_compressed_data_is_a_one_line_error(offset, lenet_q, tmp_path):
    path = save_graph(lenet_q, tmp_path / "q.npz")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)  # the local header's own
    start = info.header_offset + 30 + name_len + extra_len + offset
    data[start:start + 16] = bytes(b ^ 0x5A for b in data[start:start + 16])
    path.write_bytes(bytes(data))
    _one_line_error(path, match="not a saved hwsim graph")


def test_declared_sizes_are_capped_before_reading(saved, monkeypatch):
    monkeypatch.setattr(serialize, "MAX_UNCOMPRESSED_BYTES", 1000)
    monkeypatch.setattr(serialize, "_read_npy", lambda *a: pytest.fail("read a member past the cap"))
    _one_line_error(saved, match="over the 1000-byte cap")


def test_npy_header_larger_than_its_member_is_refused(saved, tmp_path):
    header = {"descr": "<f8", "fortran_order": False, "shape": (1 << 40,)}
    bomb = tmp_path / "bomb.npy"
    with open(bomb, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    with zipfile.ZipFile(saved, "a") as zf:
        zf.write(bomb, "a999.npy")
    _one_line_error(saved, match="header declares 8796093022208 bytes")


def test_save_refuses_an_invalid_graph(lenet_q, tmp_path):
    from dataclasses import replace
    bad = replace(lenet_q, output="nowhere")
    with pytest.raises(IRError):
        save_graph(bad, tmp_path / "bad.npz")
    assert not list(tmp_path.iterdir())


def test_errors_are_hwsim_errors():
    assert issubclass(ModelFormatError, HwsimError) and issubclass(IRError, HwsimError)
