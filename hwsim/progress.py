"""Progress bars on stderr (rich), as a factory of per-task advance callbacks:
`factory(label, total, unit=None) -> advance(n)`; the unit defaults to the context's."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

ProgressFactory = Callable[..., Callable[[int], None]]  # (label, total, unit=None) -> advance(n)


@contextmanager
def progress_bars(enabled: bool = True, unit: str = "images") -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    console = Console(stderr=True)
    if not enabled or (not console.is_terminal and not console.is_jupyter):
        # plain stderr lines when not on a terminal (CI logs), nothing with --json
        def plain(label: str, total: int, task_unit: str | None = None) -> Callable[[int], None]:
            if enabled:
                console.print(f"{label}: {total:,} {task_unit or unit}", highlight=False)
            return lambda n: None
        yield plain
        return
    columns = (TextColumn("{task.description:>14}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        def factory(label: str, total: int, task_unit: str | None = None) -> Callable[[int], None]:
            task = bars.add_task(label, total=total)
            return lambda n: bars.advance(task, n)
        yield factory


def no_progress(label: str, total: int, unit: str | None = None) -> Callable[[int], None]:
    """The factory to pass when nobody watches (library calls, tests)."""
    return lambda n: None
