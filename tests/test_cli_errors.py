"""The CLI's last line of defence: OS errors (disk full, permissions) and control characters in
messages are one line, exit 2; nothing half-written is left behind."""
from __future__ import annotations

import errno

import numpy as np

from hwsim.cli import main
from tests.conftest import LENET


def test_disk_full_while_saving_the_quantized_model_is_one_line(tmp_path, capsys, monkeypatch):
    real_savez = np.savez_compressed

    def full(f, *args, **kwargs):
        real_savez(f, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "q.int8.npz"))
    monkeypatch.setattr(np, "savez_compressed", full)
    rc = main(["quantize", str(LENET), "--no-eval", "--json", "--out", str(tmp_path / "q.int8.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"hwsim: error: {tmp_path / 'q.int8.npz'}: No space left on device"]
    assert list(tmp_path.iterdir()) == []  # no temporary file, no partial model


def test_control_characters_in_errors_are_escaped(tmp_path, capsys):
    bad = tmp_path / "evil\x1b[31mname\nsecond.onnx"
    assert main(["summary", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\\x1b" in err


def test_quantize_never_replaces_a_device_a_symlink_or_the_model(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    model.write_bytes(LENET.read_bytes())
    (tmp_path / "target").write_text("keep me")
    (tmp_path / "link.int8.npz").symlink_to(tmp_path / "target")
    for out in ("/dev/null", str(tmp_path / "link.int8.npz"), str(model), str(tmp_path)):
        assert main(["quantize", str(model), "--no-eval", "--json", "--out", out]) == 2, out
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["quantize", str(model), "--no-eval", "--json", "--out", str(tmp_path / "q.int8.npz"),
                 "--qdq", str(model)]) == 2
    assert (tmp_path / "target").read_text() == "keep me" and model.read_bytes() == LENET.read_bytes()
    assert not (tmp_path / "q.int8.npz").exists()


def test_usage_errors_are_one_line(capsys):
    import pytest
    for argv in (["map"], ["map", str(LENET), "--bogus"], ["rtl", "generate", "--depth", "abc"], ["nope"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("hwsim: error: "), err


def test_sweep_numbers_are_bounded_and_the_point_limit_has_a_flag(tmp_path, capsys):
    base = ["sweep", str(LENET), "--axis", "rows=8,16", "--out", str(tmp_path / "s"), "--json"]
    for extra, match in ((["--chunk", "-1"], "--chunk"), (["--workers", "0"], "--workers"),
                         (["--workers", "100000"], "--workers"), (["--max-points", "1"], "--max-points"),
                         (["--max-points", "x"], "--max-points")):
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], (extra, err)
    assert not (tmp_path / "s").exists()


def test_special_files_are_refused_not_read(capsys):
    for argv in (["summary", "/dev/zero"], ["map", str(LENET), "--config", "/dev/zero"],
                 ["sweep", str(LENET), "--space", "/dev/zero"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "regular file" in err[0], (argv, err)


def test_quantize_never_overwrites_its_calibration_data(tmp_path, capsys):
    calib = tmp_path / "c.npy"
    np.save(calib, np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32))
    before = calib.read_bytes()
    assert main(["quantize", str(LENET), "--calib-data", str(calib), "--no-eval", "--json", "--out", str(calib)]) == 2
    assert "input of this command" in capsys.readouterr().err and calib.read_bytes() == before
