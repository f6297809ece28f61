"""Progress lines with the time left (issue 16, point 6), as a user sees them on a terminal: a sync's writes and a
mail delivery each show their count of a known total, their rate and an ETA; piped, neither draws anything."""

from __future__ import annotations

import sys
from pathlib import Path

from test_cli_human_output import ANSI, on_terminal, piped

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def _site(tmp_path: Path, customers: int) -> Path:
    """A CSV export of tagged customers, small apply batches (so the writes take a while), mail not delivered by
    the sync."""
    rows = ["erp_id;name;email;tags"] + [f"{n};Hurtownia {n};kupiec{n}@example.pl;b2b" for n in range(customers)]
    (tmp_path / "erp.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        '[source]\nkind = "csv"\npath = "erp.csv"\n[store]\nbatch_size = 50\n[mail]\ndeliver_after_sync = false\n',
        encoding="utf-8",
    )
    return config


def test_writes_and_delivery_show_their_total_and_the_time_left(tmp_path: Path) -> None:
    config = _site(tmp_path, 3000)
    code, drawn = on_terminal([INTEGRATOR, "sync", "--config", str(config)], tmp_path)
    assert code == 0, (drawn[-2000:], (tmp_path / "stderr.txt").read_text()[-2000:])
    assert "writing accounts" in drawn and "/3,000 records" in drawn and "ETA " in drawn, drawn[-3000:]

    code, drawn = on_terminal([INTEGRATOR, "mail", "deliver", "--limit", "600", "--config", str(config)], tmp_path)
    assert code == 3, (drawn[-2000:], (tmp_path / "stderr.txt").read_text()[-2000:])  # 2,400 left pending
    assert "delivering mail" in drawn and "/600 mails" in drawn and "mails/s" in drawn and "ETA " in drawn
    assert "mail: sent 600" in drawn

    quiet = piped("mail", "deliver", "--limit", "100", "--config", str(config))
    assert quiet.returncode == 3, quiet.stderr[-2000:]
    assert "mails/s" not in quiet.stdout + quiet.stderr and ANSI not in quiet.stdout
    assert "mail: sent 100" in quiet.stdout


def test_a_count_past_its_total_raises_the_total_and_threads_lose_no_step() -> None:
    """Mail queued during a delivery goes out in it: the line's total grows with the count (never 5,010/5,000 or a
    time left below zero), and advances from several sending threads at once are all counted."""
    import io
    import threading

    from rich.console import Console
    from rich.progress import Progress

    from integrator.cli.progress import _LiveMeter

    with Progress(console=Console(file=io.StringIO(), force_terminal=True)) as progress:
        task = progress.add_task("delivering mail", total=1000)
        line = _LiveMeter(progress, task, 1000)
        workers = [threading.Thread(target=lambda: [line.advance() for _ in range(300)]) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        shown = progress.tasks[0]
        assert (shown.completed, shown.total) == (1200, 1200)
        line.stage("writing accounts", total=10)  # a new stage counts against its own total
        line.advance(5)
        assert (progress.tasks[0].completed, progress.tasks[0].total) == (5, 10)
