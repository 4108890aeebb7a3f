"""Sweeps end to end: resumable after a kill, identical on the process pool and on Dask,
refusing a folder of another sweep, one-line errors, and FPGA cost from Yosys."""
import os
import signal
import subprocess
import sys
import time

import pytest

from hwsim.sweep.run import SweepJob, run_sweep
from hwsim.sweep.space import parse_space
from tests.conftest import LENET, ROOT
from tests.hwsim.test_cli import assert_one_line_error, run

BIG_SPACE = """
[space]
rows = [2, 8, 32]
cols = [2, 8, 32]
dataflow = ["os", "ws", "is"]
sram_kib = [8, 32, 128]
dram_bytes_per_cycle = [2, 16]
batch = [1, 2]
[accuracy]
images = 0
"""  # 3 * 3 * 3 * 3 * 2 * 2 = 324 points, no accuracy: a few ms each (the mapper searches per layer)
BIG_POINTS = 324
KILL_AFTER = 60  # rows written before the kill


def data_lines(folder):
    lines = (folder / "results.csv").read_text().splitlines()
    return lines[0], sorted(lines[1:])


def sweep_cmd(space, out, *extra):
    return [sys.executable, "-m", "hwsim.cli", "sweep", str(LENET), "--space", str(space), "--out", str(out), *extra]


def test_killed_sweep_resumes_to_exactly_the_uninterrupted_rows(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(BIG_SPACE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    whole = tmp_path / "whole"
    subprocess.run(sweep_cmd(space, whole, "--workers", "1"), check=True, env=env, capture_output=True, cwd=ROOT)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(sweep_cmd(space, killed, "--workers", "1", "--chunk", "7"), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = killed / "results.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not results.exists() or results.read_text().count("\n") < KILL_AFTER):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows_at_kill = results.read_text().count("\n") - 1
    assert 0 < rows_at_kill < BIG_POINTS, "the kill must land mid-sweep"
    with open(results, "a") as f:
        f.write("64x64-os-8/8/8KiB-bw2-100MHz")  # a row cut short by the kill, as it could be mid-write
    resumed = subprocess.run(sweep_cmd(space, killed, "--workers", "1"), check=True, env=env, capture_output=True,
                             text=True, cwd=ROOT)
    assert f"{BIG_POINTS - rows_at_kill:,} evaluated now" in resumed.stdout.replace("\n", " ")
    assert data_lines(killed) == data_lines(whole) and len(data_lines(whole)[1]) == BIG_POINTS


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(BIG_SPACE)
    out = tmp_path / "s"
    proc = subprocess.Popen(sweep_cmd(space, out, "--workers", "1", "--chunk", "7"), cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not (out / "results.csv").exists()
                                           or (out / "results.csv").read_text().count("\n") < KILL_AFTER):
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rerun the same command to resume" in err and "Traceback" not in err
    assert KILL_AFTER <= (out / "results.csv").read_text().count("\n") - 1 < BIG_POINTS


SMALL_SPACE = """
[space]
array = ["4x4", "8x8", "16x16", "8x32"]
dataflow = ["os", "ws", "is"]
sram_kib = [4, 16, 64]
weight_bits = [8, 4]
[constraints]
require = ["pes <= 256", "dataflow != 'is' or rows == cols"]
[accuracy]
images = 300
"""


@pytest.fixture(scope="module")
def local_cluster():
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        yield cluster


def test_pool_and_dask_give_identical_results(tmp_path, local_cluster, fashion_test):
    space = parse_space(__import__("tomllib").loads(SMALL_SPACE))
    results = {}
    for name, kwargs in (("serial", {"workers": 1}), ("pool", {"workers": 2}),
                         ("dask", {"dask": local_cluster.scheduler_address})):
        out = tmp_path / name
        result = run_sweep(SweepJob(model=LENET, space=space, out=out, **kwargs))
        results[name] = data_lines(out)
        assert result.evaluated == 4 * 2 * 3 * 2 + 3 * 1 * 3 * 2 and result.front
        if name == "dask":
            assert "Dask cluster" in result.runner
    assert results["serial"] == results["pool"] == results["dask"]
    import pyarrow.parquet as pq  # the optional Parquet copy holds the same rows
    table = pq.read_table(tmp_path / "dask" / "results.parquet").to_pylist()
    assert sorted(r["point"] for r in table) == sorted(r["point"] for r in result.rows)
    rows = result.rows
    assert {r["int8_top1_pct"] is not None for r in rows if r["status"] == "ok"} == {True}
    assert {r["weight_bits"] for r in result.front} <= {8, 4}
    assert (tmp_path / "dask" / "pareto.png").stat().st_size > 10_000


def test_other_sweep_in_the_same_folder_is_refused(capsys, tmp_path):
    out = tmp_path / "s"
    code, _, err = run(capsys, "sweep", str(LENET), "--axis", "array=4x4,8x8", "--out", str(out), "--workers", "1")
    assert code == 0, err
    code, stdout, _ = run(capsys, "sweep", str(LENET), "--axis", "array=4x4,8x8", "--out", str(out))
    assert code == 0 and "2 resumed" in stdout
    code, _, err = run(capsys, "sweep", str(LENET), "--axis", "array=4x4,16x16", "--out", str(out))
    assert_one_line_error(code, err, "holds a different sweep (space changed)")


def test_bad_sweeps_one_line_errors(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    cases = [("[space]\nrows = [4, 8]\nclock = 3\n", "space.clock: unknown axis"),
             ("[space]\nrows = []\n", "space.rows: empty list"),
             ("[space]\nrows = {start = 9, stop = 4, step = 1}\n", "space.rows: empty range"),
             ("[space]\nrows = [4, 8]\n[constraints]\nrequire = ['rows > 8']\n", "constraints.require: 'rows > 8'"),
             ("[space\n", "not valid TOML")]
    for text, match in cases:
        bad.write_text(text)
        code, _, err = run(capsys, "sweep", str(LENET), "--space", str(bad), "--out", str(tmp_path / "o"))
        assert_one_line_error(code, err, match)
    code, _, err = run(capsys, "sweep", str(LENET), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "nothing to sweep")
    code, _, err = run(capsys, "sweep", str(LENET), "--axis", "rows=4", "--workers", "0", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "--workers 0")
    code, _, err = run(capsys, "sweep", str(LENET), "--axis", "rows=4", "--dask", "tcp://127.0.0.1:9",
                       "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "cannot reach the scheduler")
    assert not (tmp_path / "o" / "results.csv").exists() or (tmp_path / "o" / "results.csv").read_text().count(
        "\n") == 1


def test_synth_adds_fpga_cost(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HWSIM_SYNTH_CACHE", str(tmp_path / "cache"))  # a cold synthesis cache
    out = tmp_path / "s"
    code, stdout, err = run(capsys, "sweep", str(LENET), "--axis", "array=2x2", "--axis", "dataflow=os,ws",
                            "--synth", "ice40", "--out", str(out), "--workers", "1")
    assert code == 0, err
    assert "minimize latency_us, luts, sram_kib_total" in stdout and "LUTs" in stdout
    import csv
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 2 and all(int(r["luts"]) > 0 and float(r["fmax_mhz"]) > 0 for r in rows)
    assert rows[0]["luts"] == rows[1]["luts"]  # one synthesis per distinct array
    assert float(rows[0]["latency_at_fmax_us"]) == pytest.approx(int(rows[0]["total_cycles"]) /
                                                                 float(rows[0]["fmax_mhz"]))


def test_one_sweep_per_folder_at_a_time(tmp_path):
    from hwsim.sweep.store import ResultStore
    from quant.errors import ConfigError
    first = ResultStore(tmp_path, {"s": 1}, ("point",))
    first.open()
    with pytest.raises(ConfigError, match="another sweep is running"):
        ResultStore(tmp_path, {"s": 1}, ("point",)).open()
    first.close()
    second = ResultStore(tmp_path, {"s": 1}, ("point",))
    assert second.open() == {}
    second.close()


def test_model_without_labels_is_ranked_by_logits_sqnr(capsys, tmp_path):
    from tests.helpers import rgb_model
    model, calib = rgb_model(tmp_path, calib_images=32)
    code, stdout, err = run(capsys, "sweep", str(model), "--calib-data", str(calib),
                            "--axis", "array=4x4,8x8", "--axis", "weight_bits=8,3", "--out", str(tmp_path / "s"),
                            "--workers", "1")
    assert code == 0, err
    assert "maximize logits_sqnr_db" in stdout and "logits SQNR dB" in stdout
    import csv
    rows = list(csv.DictReader(open(tmp_path / "s" / "results.csv")))
    sqnr = {r["weight_bits"]: float(r["logits_sqnr_db"]) for r in rows}
    assert all(r["int8_top1_pct"] == "" for r in rows) and sqnr["8"] > sqnr["3"] + 6  # ~6 dB a bit
    code, stdout, err = run(capsys, "sweep", str(model), "--axis", "array=4x4", "--out", str(tmp_path / "t"))
    assert code == 0 and "accuracy not measured: no labelled test set and no calibration inputs" in stdout, err
