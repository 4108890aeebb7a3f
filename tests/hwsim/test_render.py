"""Terminal tables show names from the user's files as text: control characters escaped,
rich markup shown rather than obeyed."""
import onnx
import pytest

from hwsim.render import cell, printable
from tests.conftest import LENET
from tests.hwsim.test_cli import run

EVIL = "\x1b[2J\x1b[31mpwn[bold]x[/bold]\x07"


def test_printable_escapes_control_characters():
    assert printable("conv1") == "conv1" and printable("café µ") == "café µ"
    assert printable("a\x1b[31mb\nc\td\x07\u200b") == "a\\x1b[31mb\\nc\\td\\x07\\u200b"
    assert cell("[bold]x[/bold]") == "\\[bold]x\\[/bold]"


@pytest.fixture
def evil_model(tmp_path):
    model = onnx.load(str(LENET))
    model.graph.node[0].name = EVIL
    path = tmp_path / "m\x1b[31m[red]evil.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("command", ["summary", "map"])
def test_names_are_shown_not_obeyed(capsys, evil_model, command):
    code, out, err = run(capsys, command, str(evil_model))
    assert code == 0 and not err
    assert "\x1b" not in out and "\x07" not in out  # nothing reaches the terminal raw
    assert "\\x1b[2J\\x1b[31mpwn[bold]x[/bold]\\x07" in out  # the name, escaped, whole
    assert "m\\x1b[31m[red]evil" in out  # the model name (file stem) in the title


def test_a_graph_with_no_cycles_prints(capsys, tmp_path):
    from tests.conftest import write_model
    path = write_model(tmp_path / "flat.onnx", """
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1,1,4,4] x) => (float[1,16] y) { y = Flatten(x) }""")
    code, out, err = run(capsys, "map", str(path))
    assert code == 0 and "0 cycles" in out and "- inferences/s" in out, err


def test_thousands_of_rows_print_as_plain_aligned_columns():
    import io

    from rich.console import Console
    from rich.table import Table

    from hwsim.render import PLAIN_TABLE_ROWS, cell, print_table
    t = Table(title="big")
    t.add_column("layer")
    t.add_column("MACs", justify="right")
    for i in range(PLAIN_TABLE_ROWS + 1):
        t.add_row(cell(f"n{i}[bold]\x1b"), f"{i:,}")
    out = io.StringIO()
    print_table(Console(file=out, width=80), t)
    lines = out.getvalue().splitlines()
    assert lines[0] == "big" and lines[1].split() == ["layer", "MACs"]
    assert len(lines) == 3 + PLAIN_TABLE_ROWS + 1
    assert lines[-1].split() == ["n400[bold]\\x1b", "400"] and "\x1b" not in out.getvalue()
