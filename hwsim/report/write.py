"""Writing a report folder: summary.json, report.md, report.html and plots/*.png, rendered in
memory and handed to `folder.publish`, which replaces an existing report whole or not at all and
only if hwsim wrote it (see hwsim/report/folder.py)."""
from __future__ import annotations

import json
from pathlib import Path

from hwsim.report.document import document, figures_used, to_html, to_markdown
from hwsim.report.folder import MARKER, check_output, publish
from hwsim.report.plots import FIGURES

__all__ = ["MARKER", "check_output", "render", "write_report"]


def _utf8(text: str) -> bytes:
    """UTF-8; a file name that is not (Python keeps its bytes as lone surrogates) is shown escaped."""
    return text.encode("utf-8", "backslashreplace")


def render(summary: dict) -> dict[str, bytes]:
    """The report's files (relative path -> bytes), all rendered from `summary`."""
    blocks = document(summary)
    images = {name: FIGURES[name](summary) for name in figures_used(blocks)}
    return {"summary.json": _utf8(json.dumps(summary, indent=2, allow_nan=False) + "\n"),
            "report.md": _utf8(to_markdown(blocks)),
            "report.html": _utf8(to_html(blocks, images)),
            **{f"plots/{name}.png": png for name, png in images.items()}}


def write_report(summary: dict, out: Path) -> list[Path]:
    """Render and write the report; returns the files written (inside `out`). publish() checks `out`
    (the CLI also calls check_output before any work)."""
    return publish(render(summary), out)
