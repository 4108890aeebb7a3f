"""Writing a report folder: summary.json, report.md, report.html and plots/*.png, built in a
temporary folder beside the target and moved into place at the end, so an existing report is
replaced whole or not at all."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hwsim.report.document import document, figures_used, to_html, to_markdown
from hwsim.report.plots import FIGURES
from quant.errors import ConfigError

MARKER = "summary.json"  # a folder holding this is an hwsim report and may be replaced


def check_output(out: Path) -> None:
    """Fail before any work if `out` cannot become a report folder."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(f"--out {out}: folder exists and is not an hwsim report (no {MARKER}); "
                          "refusing to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=out.parent)
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write there ({err.strerror or err})") from None
    Path(probe).rmdir()


def write_report(summary: dict, out: Path) -> list[Path]:
    """Render and write the report; returns the files written (inside `out`)."""
    check_output(out)
    blocks = document(summary)
    images = {name: FIGURES[name](summary) for name in figures_used(blocks)}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is for sharing
    old = None
    try:
        (tmp / MARKER).write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
        (tmp / "report.md").write_text(to_markdown(blocks))
        (tmp / "report.html").write_text(to_html(blocks, images))
        (tmp / "plots").mkdir()
        for name, png in images.items():
            (tmp / "plots" / f"{name}.png").write_bytes(png)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / out.name)
        tmp.rename(out)
    except BaseException:
        if old is not None and not out.exists():
            (old / out.name).rename(out)  # put the previous report back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return sorted(p for p in out.rglob("*") if p.is_file())
