"""The report as a list of blocks (headings, text, tables, figures) built from the summary
alone, and its two renderings: Markdown and one self-contained HTML page (CSS inline,
plots embedded as base64 PNG, no scripts)."""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str = ""  # one letter a column: l(eft) for text, r(ight) for numbers; default "l" then "r"s

    def aligned(self, i: int) -> str:
        return self.align[i] if self.align else ("l" if i == 0 else "r")


@dataclass(frozen=True)
class Figure:
    name: str  # key of plots.FIGURES; the file is plots/NAME.png
    caption: str


Block = Heading | Text | Table | Figure


def _int(v: int | None) -> str:
    return "–" if v is None else f"{v:,}"


def _num(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} %"


def _shape(shape: list[int]) -> str:
    return "x".join(map(str, shape))


def _headline(s: dict) -> Table:
    acc, tot, mem = s["accuracy"], s["totals"], s["memory"]
    rows = []
    if acc:
        rows += [("float32 top-1 (PyTorch)", _pct(acc["float_top1_pct"])),
                 ("int8 top-1 (integer-only executor)", _pct(acc["int8_top1_pct"])),
                 ("accuracy drop", f"{_num(acc['drop_pts'])} pts"),
                 ("float/int8 prediction agreement", _pct(acc["agreement_pct"]))]
    rows += [("MACs per image", _int(tot["macs"])),
             ("accelerator cycles per image", _int(tot["total_cycles"])),
             (f"latency at {tot['clock_mhz']:g} MHz, batch 1", f"{_num(tot['latency_us'], 1)} µs"),
             ("throughput at batch 1", f"{_num(tot['throughput_images_per_s'], 0)} images/s"),
             ("array utilization", _pct(tot["utilization_pct"])),
             ("parameters: float32 → int8", f"{_int(mem['param_bytes_fp32'])} B → {_int(mem['param_bytes_int8'])} B"),
             ("peak on-chip footprint / SRAM", f"{_int(mem['peak_footprint_bytes'])} B / {_int(mem['sram_bytes'])} B"),
             ("DRAM traffic per image (read + write)",
              f"{_int(mem['dram_read_bytes'])} B + {_int(mem['dram_write_bytes'])} B")]
    return Table(("metric", "value"), tuple(rows))


def _accuracy(s: dict) -> list[Block]:
    acc = s["accuracy"]
    blocks: list[Block] = [Heading("Accuracy: float32 reference vs int8")]
    dev = s["float_device"]
    if acc is None:
        return [*blocks, Text(s["data"]["note"])]
    blocks.append(Text(f"{_int(acc['images'])} images: {s['data']['source']}; {s['data']['preprocess']}. "
                       f"The float32 model runs in PyTorch {dev['torch']} on {dev['device']} ({dev['description']}); "
                       "the int8 model in quant's integer-only executor, which the cycle engine and the RTL "
                       "reproduce bit for bit."))
    rows = tuple((c["class"], _int(c["images"]), _pct(c["float_top1_pct"]), _pct(c["int8_top1_pct"]),
                  _num(c["drop_pts"])) for c in acc["per_class"])
    rows += (("all", _int(acc["images"]), _pct(acc["float_top1_pct"]), _pct(acc["int8_top1_pct"]),
              _num(acc["drop_pts"])),)
    blocks.append(Table(("class", "images", "float32 top-1", "int8 top-1", "drop (pts)"), rows))
    blocks.append(Figure("confusion", "int8 confusion matrix (rows: true class, columns: predicted)"))
    return blocks


def _sqnr(s: dict) -> list[Block]:
    rows = tuple((r["name"], r["op"], _num(r["sqnr_db"], 1), _num(r["max_abs_error"], 4), _num(r["lsb"], 4))
                 for r in s["layers"])
    return [Heading("Quantization error per layer"),
            Text("SQNR is the power of each layer's float32 output f over the power of its error f - q, in dB, "
                 "where q is the layer's int8 output dequantized (scale x (q - zero point)), summed over all "
                 "measured images. Error accumulates from the input on, so a layer hurts where the SQNR falls; "
                 "each bit of precision is worth about six dB. LSB: one int8 step of the output, in real units."),
            Table(("layer", "op", "SQNR (dB)", "max |error|", "LSB"), rows, "llrrr"),
            Figure("sqnr", "SQNR of each layer's int8 output vs float32")]


def _cycles(s: dict) -> list[Block]:
    cfg, tot = s["config"], s["totals"]
    rows = tuple((r["name"], r["op"], r["unit"], _int(r["macs"]), _int(r["compute_cycles"]), _int(r["stall_cycles"]),
                  _int(r["total_cycles"]), _pct(r["utilization_pct"]) if r["unit"] == "array" else "",
                  _num(r["latency_us"], 1)) for r in s["layers"])
    rows += (("total", "", "", _int(tot["macs"]), _int(tot["compute_cycles"]), _int(tot["stall_cycles"]),
              _int(tot["total_cycles"]), _pct(tot["utilization_pct"]), _num(tot["latency_us"], 1)),)
    perf = tuple((p["engine"], p["device"], _int(p["batch"]), _num(p["latency_us"], 1),
                  _num(p["throughput_images_per_s"], 0), p["how"]) for p in s["performance"])
    return [Heading("Cycles and latency"),
            Text(f"{cfg['name']}: {cfg['rows']}x{cfg['cols']} {cfg['dataflow'].upper()} systolic array at "
                 f"{cfg['clock_mhz']:g} MHz, SRAM {cfg['ifmap_sram_kib']}/{cfg['filter_sram_kib']}/"
                 f"{cfg['ofmap_sram_kib']}/{cfg['acc_sram_kib']} KiB (ifmap/filter/ofmap/acc, double-buffered), DRAM "
                 f"{cfg['dram_bytes_per_cycle']:g} B/cycle with {_int(cfg['dram_latency_cycles'])}-cycle latency and "
                 f"{_int(cfg['dram_request_bytes'])}-byte requests, {cfg['vector_lanes']}-lane vector unit; batch 1, "
                 "hwsim's analytical engine (its array compute cycles equal its cycle engine's; stalls come from "
                 "its memory model). Stall = cycles the array waits for DRAM."),
            Table(("layer", "op", "unit", "MACs", "compute", "stall", "total cycles", "utilization", "latency (µs)"),
                  rows, "lllrrrrrr"),
            Figure("cycles", "cycles per layer, compute and DRAM stall stacked"),
            Figure("utilization", "array utilization per GEMM layer (useful MACs / (PEs x cycles))"),
            Heading("Float reference vs accelerator", 3),
            Text("Latency is one forward pass of the whole batch; throughput = batch / latency. The float "
                 "reference is measured wall time; the accelerator's is simulated cycles / clock."),
            Table(("engine", "device", "batch", "latency (µs)", "images/s", "how"), perf, "llrrrl")]


def _memory(s: dict) -> list[Block]:
    mem, roof = s["memory"], s["roofline"]
    rows = (("input", "", "", "", _int(mem["input_bytes_fp32"]), _int(mem["input_bytes_int8"]), "", "", "", "", ""),)
    rows += tuple((r["name"], r["op"], _int(r["param_bytes_fp32"]), _int(r["param_bytes_int8"]),
                  _int(r["act_bytes_fp32"]), _int(r["act_bytes_int8"]), _int(r["dram_read_bytes"]),
                  _int(r["dram_write_bytes"]), _int(r["footprint_bytes"]),
                  _num(r["intensity_mac_per_byte"]), _num(r["mac_per_cycle"])) for r in s["layers"])
    rows += (("total", "", _int(mem["param_bytes_fp32"]), _int(mem["param_bytes_int8"]), _int(mem["act_bytes_fp32"]),
              _int(mem["act_bytes_int8"]), _int(mem["dram_read_bytes"]), _int(mem["dram_write_bytes"]),
              _int(mem["peak_footprint_bytes"]), "", ""),)
    return [Heading("Memory"),
            Text(f"A value takes four bytes in float32 and one in int8: weights {_int(mem['weight_bytes_fp32'])} B → "
                 f"{_int(mem['weight_bytes_int8'])} B, activations {_int(mem['act_bytes_fp32'])} B → "
                 f"{_int(mem['act_bytes_int8'])} B per image, input included (biases stay int32). Peak on-chip "
                 f"footprint "
                 f"{_int(mem['peak_footprint_bytes'])} B = {_pct(mem['sram_use_pct'])} of "
                 f"{_int(mem['sram_bytes'])} B SRAM. Footprint total is the peak over layers."),
            Table(("layer", "op", "params fp32 (B)", "params int8 (B)", "acts fp32 (B)", "acts int8 (B)",
                   "DRAM rd (B)", "DRAM wr (B)", "on-chip (B)", "MAC/DRAM B", "MAC/cycle"), rows, "ll" + "r" * 9),
            Figure("memory", "bytes per layer: float32 vs int8 parameters and activations, DRAM traffic"),
            *_energy(s),
            Text(f"Roofline: the array peaks at {_int(roof['peak_mac_per_cycle'])} MAC/cycle; the DRAM link "
                 f"moves {_num(roof['dram_bytes_per_cycle'], 1)} B/cycle, so a layer needs "
                 f"{_num(roof['ridge_mac_per_byte'])} MAC per DRAM byte to be compute-bound."),
            Figure("roofline", "roofline: attained MAC/cycle vs MACs per DRAM byte, one point per GEMM layer")]


def _energy(s: dict) -> list[Block]:
    e = s["energy"]
    parts = ("mac", "register", "vector", "sram", "dram", "leakage")
    rows = tuple((r["name"], r["op"], *(_num(r[f"energy_{p}_nj"], 1) for p in parts), _num(r["energy_nj"], 1))
                 for r in s["layers"])
    rows += (("total", "", *(_num(e[f"{p}_nj"], 1) for p in parts), _num(e["total_nj"], 1)),)
    return [Heading("Energy estimate", 3),
            Text(f"Energy per image from hwsim's access counts and latency, and {e['source']} (the DRAM midpoint "
                 "taken; SRAM interpolated in buffer size; registers: two operands latched and read and the "
                 "32-bit accumulator read and written per MAC; leakage: PEs and SRAM for the layer's cycles). "
                 "No clock tree, control or wires: for comparing designs, not for sign-off."),
            Table(("layer", "op", "MAC (nJ)", "register (nJ)", "vector (nJ)", "SRAM (nJ)", "DRAM (nJ)",
                   "leakage (nJ)", "total (nJ)"), rows, "ll" + "r" * 7)]


def _rtl(s: dict) -> list[Block]:
    r = s["rtl"]
    if not r:
        return []
    verdict = "bit-exact" if r["bit_exact"] else f"NOT bit-exact ({r['mismatched_images']} images differ)"
    rows = tuple((layer["name"], _int(layer["rtl_cycles"]) if isinstance(layer["rtl_cycles"], int)
                  else ", ".join(map(_int, layer["rtl_cycles"])), _int(layer["hwsim_cycles"])) for layer in r["layers"])
    return [Heading("RTL check"),
            Text(f"{_int(r['images'])} images ({r['inputs']}) through the generated Verilog tile engine "
                 f"({r['array']}, {r.get('dataflow', 'os').upper()}, {r['simulator']}): logits {verdict} with the "
                 f"integer executor; each conv/FC layer's RTL cycles {'equal' if r['cycle_exact'] else 'DIFFER from'} "
                 "its compute cycles in the accelerator table above (the engine runs each GEMM layer as the "
                 "mapper's chunks, from memories that hold the whole layer; pooling, activations and, on an "
                 "output-stationary engine, im2col run on the host between the layers, so stalls and vector ops "
                 f"are not in the RTL yet). Simulation {_num(r['wall_s'], 1)} s after a {_num(r['build_s'], 1)} s "
                 "build."),
            Table(("layer", "RTL cycles", "hwsim compute cycles"), rows)]


def _provenance(s: dict) -> list[Block]:
    env, rep = s["environment"], s["report"]
    return [Heading("How this was made"),
            Text(f"Generated {rep['generated_utc']} by hwsim {env['hwsim']} in {_num(rep['wall_s'], 1)} s: "
                 f"`{rep['command']}`. Python {env['python']}, numpy {env['numpy']}, torch {env['torch']}, "
                 f"onnx {env['onnx']}, onnxruntime {env['onnxruntime']} on {env['platform']} "
                 f"({_int(env['cpu_cores'])} cores). Every number here is in summary.json.")]


def document(s: dict) -> list[Block]:
    cfg, model = s["config"], s["model"]
    return [Heading(f"{model['name']} on {cfg['name']} ({cfg['rows']}x{cfg['cols']} {cfg['dataflow'].upper()}, "
                    f"{cfg['clock_mhz']:g} MHz): int8 accelerator vs float32 reference", 1),
            Text(f"Model {model['file']}: input {_shape(model['input_shape'])}, {_int(model['layers'])} layers, "
                 f"{_int(model['params'])} parameters, {_int(model['macs'])} MACs per image."),
            _headline(s), *_accuracy(s), *_sqnr(s), *_cycles(s), *_memory(s), *_rtl(s), *_provenance(s)]


def figures_used(blocks: list[Block]) -> list[str]:
    return [b.name for b in blocks if isinstance(b, Figure)]


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Text):
            out.append(b.text)
        elif isinstance(b, Figure):
            out.append(f"![{b.caption}](plots/{b.name}.png)")
        else:
            lines = ["| " + " | ".join(b.headers) + " |",
                     "|" + "|".join("---:" if b.aligned(i) == "r" else "---" for i in range(len(b.headers))) + "|"]
            lines += ["| " + " | ".join(row) + " |" for row in b.rows]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1180px;
       padding: 0 1em; color: #1b1f24; }
h1 { font-size: 1.5em; border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; font-size: 13.5px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e6e9ed; }
th { background: #f3f5f7; text-align: left; }
td.num, th.num { text-align: right; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #e6e9ed; }
figcaption { color: #57606a; font-size: 13px; }
code { background: #f3f5f7; padding: 1px 4px; border-radius: 3px; }
"""


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _cells(table: Table, row: tuple[str, ...], tag: str) -> str:
    return "".join(f'<{tag}{" class=num" if table.aligned(i) == "r" else ""}>{html.escape(c)}</{tag}>'
                   for i, c in enumerate(row))


def to_html(blocks: list[Block], images: dict[str, bytes]) -> str:
    title = next((b.text for b in blocks if isinstance(b, Heading)), "hwsim report")
    body = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Figure):
            data = base64.b64encode(images[b.name]).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
        else:
            rows = "".join(f"<tr>{_cells(b, r, 'td')}</tr>" for r in b.rows)
            body.append(f"<table><thead><tr>{_cells(b, b.headers, 'th')}</tr></thead><tbody>{rows}</tbody></table>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")

