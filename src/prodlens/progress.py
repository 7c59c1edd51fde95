"""Progress shared by every long-running job: a rich bar on a terminal; in a log or a pipe (where a bar would print
nothing until the end) a plain line with the count, elapsed time and ETA every `LOG_EVERY_S` seconds and at the end."""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

LOG_WIDTH = 200  # columns of text written to a file or a pipe: tables are as wide as they need, never cut at 80


def terminal_console(stderr: bool = False) -> Console:
    """A console that fits where its output goes: the terminal's width, or LOG_WIDTH in a log (rich would assume 80
    columns and fold every wide table)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else LOG_WIDTH)


console = terminal_console(stderr=True)
LOG_EVERY_S = 30.0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def note(text: str) -> None:
    """A line of a long job's news (an epoch's metrics): above the bar on a terminal, a plain line in a log."""
    if console.is_terminal:
        console.print(text, highlight=False)
    else:
        print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _log_lines(total: int, description: str, unit: str, eta: bool = True) -> Iterator[Callable[[int], None]]:
    start = last = time.monotonic()
    done = 0

    def line() -> str:
        elapsed = time.monotonic() - start
        left = elapsed / done * (total - done) if done and eta else None
        count = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if unit == "B" else f"{done}/{total}"
        return (f"{description}: {count} ({done / total:.0%}), {_clock(elapsed)} elapsed"
                + (f", eta {_clock(left)}" if left is not None and done < total else ""))

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= LOG_EVERY_S and done < total:
            last = now
            print(line(), file=sys.stderr, flush=True)

    yield advance
    print(line(), file=sys.stderr, flush=True)


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool = True, unit: str = "",
                 upper_bound: bool = False) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; shows a rich progress bar on stderr when enabled. `unit="B"` counts bytes. `upper_bound`:
    `total` is a most, not a count (epochs under early stopping): no ETA is shown, as it would be a fiction."""
    if not enabled or total <= 0:
        yield lambda n=1: None
        return
    if not console.is_terminal:
        with _log_lines(total, description, unit, eta=not upper_bound) as advance:
            yield advance
        return
    done = DownloadColumn() if unit == "B" else MofNCompleteColumn()
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), done, TimeElapsedColumn()]
    if not upper_bound:
        columns += [TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=console) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)
