"""The analytical engine on whole graphs."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.analytical import map_graph
from hwsim.config import AcceleratorConfig, Dataflow


@settings(max_examples=30, deadline=None)
@given(r=st.integers(1, 64), c=st.integers(1, 64), df=st.sampled_from(list(Dataflow)), batch=st.integers(1, 4),
       bw=st.sampled_from([0.5, 4.0, 64.0]))
def test_totals_and_bounds(lenet, r, c, df, batch, bw):
    cfg = AcceleratorConfig(rows=r, cols=c, dataflow=df, dram_bytes_per_cycle=bw, ifmap_sram_kib=512,
                            filter_sram_kib=512, ofmap_sram_kib=512)
    res = map_graph(lenet, cfg, batch=batch)
    assert res.total("macs") == batch * lenet.total_macs
    assert all(0 <= layer.utilization <= 1 for layer in res.layers) and 0 < res.utilization <= 1
    assert res.total_cycles == sum(layer.compute_cycles + layer.stall_cycles for layer in res.layers)
    assert res.latency_s == pytest.approx(res.total_cycles / 100e6)
    assert all(layer.stall_cycles >= 0 and layer.dram_read_bytes >= 0 for layer in res.layers)


def test_json_document_has_the_issue_fields(lenet):
    doc = map_graph(lenet, AcceleratorConfig()).to_dict()
    assert {"config", "layers", "total_cycles", "total_macs", "latency_s"} <= set(doc)
    assert {"name", "op", "m", "k", "n", "folds", "compute_cycles", "stall_cycles", "total_cycles", "macs",
            "utilization", "sram_read_bytes", "sram_write_bytes", "dram_read_bytes",
            "dram_write_bytes"} <= set(doc["layers"][0])
    assert doc["config"]["dataflow"] == "os" and doc["total_macs"] == 416520


def test_scalesim_timing_has_no_stalls_on_the_array(lenet):
    res = map_graph(lenet, AcceleratorConfig(), timing_model="scalesim")
    assert all(layer.stall_cycles == 0 for layer in res.layers if layer.unit == "array")
