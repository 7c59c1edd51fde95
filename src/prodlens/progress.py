"""Progress bars (rich) shared by every long-running job."""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

console = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool = True,
                 unit: str = "") -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; shows a rich progress bar on stderr when enabled. `unit="B"` counts bytes."""
    if not enabled or total <= 0:
        yield lambda n=1: None
        return
    done = DownloadColumn() if unit == "B" else MofNCompleteColumn()
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), done,
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=not sys.stderr.isatty()) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)
