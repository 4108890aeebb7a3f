"""report.md shows nothing that summary.json lacks; report.html is one self-contained page."""
import base64
import json
import re

import pytest

NUMBER = re.compile(r"(?<![\w.\-])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w.])")


def renderings(doc) -> set[str]:
    """Every way the report may print a number of the summary: as is, with thousands separators, or
    rounded to 0..4 decimals; numbers inside the summary's strings count as they are."""
    out: set[str] = set()

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            out.update(NUMBER.findall(v))
        elif isinstance(v, bool) or v is None:
            return
        elif isinstance(v, int):
            out.update({str(v), f"{v:,}"})
        elif isinstance(v, float):
            out.update({f"{v:g}", *(f"{v:,.{d}f}" for d in range(5))})
    walk(doc)
    return out


def numbers_not_in_summary(markdown: str, summary: dict) -> list[str]:
    known = renderings(summary)
    return [n for n in NUMBER.findall(markdown) if n not in known]


def test_every_number_in_the_markdown_is_in_the_summary(lenet_report):
    md = (lenet_report / "report.md").read_text()
    summary = json.loads((lenet_report / "summary.json").read_text())
    assert len(NUMBER.findall(md)) > 200
    assert numbers_not_in_summary(md, summary) == []


def test_the_check_catches_a_drifted_number(lenet_report):
    md = (lenet_report / "report.md").read_text()
    summary = json.loads((lenet_report / "summary.json").read_text())
    cycles = f"{summary['totals']['total_cycles']:,}"
    drifted = md.replace(f"| {cycles} |", f"| {summary['totals']['total_cycles'] + 1:,} |")
    assert drifted != md and numbers_not_in_summary(drifted, summary)


def test_summary_is_strict_json(lenet_report):
    json.loads((lenet_report / "summary.json").read_text(), parse_constant=pytest.fail)  # no NaN/Infinity


def test_html_is_self_contained_and_embeds_the_plots(lenet_report):
    page = (lenet_report / "report.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    srcs = re.findall(r'src="([^"]+)"', page)
    plots = sorted((lenet_report / "plots").glob("*.png"))
    assert {p.stem for p in plots} == {"cycles", "utilization", "memory", "sqnr", "roofline", "confusion"}
    assert len(srcs) == len(plots) and all(s.startswith("data:image/png;base64,") for s in srcs)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in srcs}
    assert embedded == {p.read_bytes() for p in plots}
    md = (lenet_report / "report.md").read_text()
    for p in plots:
        assert f"(plots/{p.name})" in md
    assert page.count("<table>") == len(re.findall(r"^\|[-:|]+\|$", md, re.MULTILINE)) >= 6
