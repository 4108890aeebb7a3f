"""The QDQ export (quant.qdq_export) of a graph holding every op runs in onnxruntime, an
independent int8 implementation, and agrees with the integer executor to one LSB on every output
(ORT rounds half to even in float, we round half away from zero in integers)."""
import numpy as np
import onnx
import onnxruntime as ort

from quant.int_exec import quantize_input, run_int
from quant.ir import Op
from quant.qdq_export import to_qdq_model


def test_every_op_agrees_with_onnxruntime_to_one_lsb(every_op_q, tmp_path):
    assert {n.op for n in every_op_q.nodes} == set(Op)
    path = tmp_path / "qdq.onnx"
    onnx.save(to_qdq_model(every_op_q), str(path))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((16, 3, 12, 12), dtype=np.float32)
    theirs = session.run(None, {session.get_inputs()[0].name: x})[0]
    out = every_op_q.nodes[-1].quant.out
    ours = (run_int(every_op_q, quantize_input(x, every_op_q.input_quant)).astype(np.float64) - out.zero_point)
    assert np.abs(theirs / out.scale - ours).max() <= 1.0 + 1e-6
