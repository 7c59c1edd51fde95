"""Progress in a log (where a bar would print nothing until the end) and tables that are not cut at 80 columns."""
from rich.table import Table

from prodlens import progress


def test_a_long_job_in_a_log_prints_count_elapsed_and_eta(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)  # a line at every step instead of every 30 s
    with progress.progress_bar(4, "encoding items") as advance:
        for _ in range(4):
            advance(1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("encoding items: 1/4 (25%)") and "elapsed, eta" in lines[0]
    assert lines[-1].startswith("encoding items: 4/4 (100%)") and "eta" not in lines[-1]


def test_an_upper_bound_shows_no_eta(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    with progress.progress_bar(200, "training (epochs, at most)", upper_bound=True) as advance:
        advance(1)
        advance(1)
    err = capsys.readouterr().err
    assert "2/200" in err and "eta" not in err  # early stopping: 200 is a most, not a forecast


def test_tables_in_a_log_are_as_wide_as_they_need(capsys):
    console = progress.terminal_console()
    assert console.width == progress.LOG_WIDTH
    table = Table("direction", *(f"column {i} of a wide table" for i in range(5)))
    table.add_row("P2V", *("0.123" for _ in range(5)))
    console.print(table)
    rows = [line for line in capsys.readouterr().out.splitlines() if "P2V" in line]
    assert len(rows) == 1 and rows[0].count("0.123") == 5  # one line, not folded at 80 columns
