"""Fuzz worker: runs hwsim commands in-process on one file after another, under a memory cap.

Protocol: one JSON job per stdin line -> one JSON result per line on the original stdout.
A job is {"commands": [[argv...], ...], "oracle": path-or-null}. A result lists, per command,
its exit code and stderr, or the traceback of an exception that escaped `hwsim.cli.main`;
with an oracle path, whether hwsim's float output equals onnxruntime's on the accepted model.
The parent kills this process when a job overruns its time limit (a hang)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import traceback
import warnings


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _run_cli(argv: list[str]) -> dict:
    from hwsim.cli import main
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("default")
            rc = main(argv)
    except BaseException as exc:  # anything escaping main() is a finding, MemoryError included
        return {"argv": argv, "crash": "".join(traceback.format_exception(exc)[-3:])[-1500:]}
    return {"argv": argv, "rc": rc, "stderr": err.getvalue()[-2000:]}


def _oracle(path: str) -> dict:
    """hwsim accepts the model -> onnxruntime must run it and give the same float output."""
    import numpy as np
    import onnxruntime as ort

    from quant.errors import HwsimError
    from quant.float_exec import run_float
    from quant.onnx_import import load_onnx
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = load_onnx(path)
    except HwsimError:
        return {"accepted": False}
    x = np.random.default_rng(0).random((1, *graph.input_shape[1:]), dtype=np.float32)
    ours = run_float(graph, x)
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        theirs = session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception as exc:
        return {"accepted": True, "ort_refused": f"{type(exc).__name__}: {str(exc)[:300]}"}
    same = theirs.shape == ours.shape and bool(np.allclose(ours, theirs, rtol=1e-4, atol=1e-4 * (
        1 + float(np.max(np.abs(theirs))) if theirs.size else 1.0), equal_nan=True))
    return {"accepted": True, "same": same, "shapes": [list(ours.shape), list(theirs.shape)]}


def main() -> None:
    cap = int(sys.argv[1])
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # tables and C-level chatter go nowhere; results go to `out`
    sys.stdout = open(os.devnull, "w")
    import onnxruntime  # noqa: F401

    import hwsim.cli  # noqa: F401  (imports before the cap: it bounds what a file makes us allocate)
    import quant.float_exec  # noqa: F401
    limit = _vm_bytes() + cap
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        result = {"commands": [_run_cli(argv) for argv in job["commands"]]}
        if job.get("oracle"):
            try:
                result["oracle"] = _oracle(job["oracle"])
            except BaseException as exc:
                result["oracle"] = {"crash": "".join(traceback.format_exception(exc)[-3:])[-1500:]}
        result["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out.write(json.dumps(result) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
