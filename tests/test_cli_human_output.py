"""Human output for people and for logs (issue 16, point 6), through the installed `integrator` command.

Piped (a file, `| less`, a log collector) nothing wraps at 80 columns: a table is as wide as its longest value,
so no number or name is broken across lines, and no control codes are written. On a terminal (a pseudo-terminal
here) a sync shows a progress line with its rate; piped it shows none. `integrator.cli.progress` itself shows
the rate and the time left when the total is known.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))
LONG_NAME = "Przedsiębiorstwo Handlowo-Usługowe " + "Hurtownia Artykułów Spożywczych i Przemysłowych " * 2
LONG_NAME = LONG_NAME.strip()[:120]
ANSI = "\x1b["


def site(tmp_path: Path) -> Path:
    """A CSV export of three tagged customers (one with a 120-character name, one with brackets in its name, one
    with no e-mail) and a config with the defaults: an SQLite store and file mail beside it."""
    rows = [
        "erp_id;name;email;tags",
        f"1;{LONG_NAME};dlugi@example.pl;b2b",
        "2;Hurtownia [b2b] Nowak;k2@example.pl;b2b",
        "3;Firma bez adresu;;b2b",
    ]
    (tmp_path / "erp.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text('[source]\nkind = "csv"\npath = "erp.csv"\n', encoding="utf-8")
    return config


def piped(*args: str) -> subprocess.CompletedProcess[str]:
    """`integrator ARGS` with stdout and stderr pipes and no COLUMNS set, as cron or `| tee log` runs it."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([INTEGRATOR, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def on_terminal(args: list[str], tmp_path: Path) -> tuple[int, str]:
    """Run `args` with stdout on a 100x40 pseudo-terminal (stderr to a file): the exit code and what it drew."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=follower, stderr=stderr, env=env)
    os.close(follower)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    return process.wait(timeout=120), drawn.decode("utf-8", "replace")


def test_piped_sync_and_accounts_list_break_no_value_across_lines(tmp_path: Path) -> None:
    config = site(tmp_path)
    done = piped("sync", "--config", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert ANSI not in done.stdout
    # The summary: one header line with every count's name, one line with every count.
    names = ["records", "created", "re-added", "updated", "removed", "unchanged", "rejected", "quarantined", "mails"]
    [header] = [line for line in lines if "records" in line and "quarantined" in line]
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == names
    counts = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in lines]
    assert ["3", "2", "0", "0", "0", "0", "1", "0", "2"] in counts, done.stdout
    assert "mail: 2 sent, 0 failed, 0 left pending" in lines

    listed = piped("accounts", "list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert ANSI not in listed.stdout
    [row] = [line for line in listed.stdout.splitlines() if LONG_NAME in line]
    assert "dlugi@example.pl" in row and "pending_activation" in row and " UTC" in row  # the whole row, one line
    assert max(map(len, listed.stdout.splitlines())) > 150  # wider than any terminal's default
    assert "Hurtownia [b2b] Nowak" in listed.stdout  # a name is text, never read as markup
    frame = {len(line) for line in listed.stdout.splitlines()[1:]}
    assert len(frame) == 1  # every row and rule the same width: aligned


def test_a_sync_on_a_terminal_shows_its_progress_and_piped_none(tmp_path: Path) -> None:
    """On a terminal: a progress line with the rate while the sync works, then tables that fit the terminal."""
    config = site(tmp_path)
    code, drawn = on_terminal([INTEGRATOR, "sync", "--config", str(config)], tmp_path)
    assert code == 0, (drawn[-2000:], (tmp_path / "stderr.txt").read_text()[-2000:])
    assert "records/s" in drawn and ANSI in drawn  # the progress line, drawn and then cleared
    assert "Run 1: ok" in drawn  # then the summary

    # On a 100-column terminal the long name folds; short values (logins, statuses) stay whole.
    code, table = on_terminal([INTEGRATOR, "accounts", "list", "--config", str(config)], tmp_path)
    assert code == 0 and "dlugi@example.pl" in table and "pending_activation" in table, table[-3000:]
    assert LONG_NAME not in table and LONG_NAME[:10] in table

    again = piped("sync", "--config", str(config))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "records/s" not in again.stdout + again.stderr and ANSI not in again.stdout
    assert "Run 2: ok" in again.stdout


def test_the_progress_line_shows_the_rate_and_the_time_left(tmp_path: Path) -> None:
    """What `mail deliver` or any long loop gets from `integrator.cli.progress.track`: the count of the total, the
    rate in its unit and an ETA; off a terminal the same loop draws nothing."""
    script = (
        "import time\n"
        "from integrator.cli.progress import track\n"
        "for _ in track(range(40), 'delivering', unit='mails'):\n"
        "    time.sleep(0.05)\n"
        "print('done')\n"
    )
    code, drawn = on_terminal([sys.executable, "-c", script], tmp_path)
    assert code == 0, (drawn[-2000:], (tmp_path / "stderr.txt").read_text()[-2000:])
    assert "delivering" in drawn and "/40 mails" in drawn
    assert any(f"{n} mails/s" in drawn for n in range(5, 40)), drawn[-1000:]  # about 20 a second
    assert "ETA 0:00:0" in drawn

    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert quiet.returncode == 0 and quiet.stdout == "done\n" and quiet.stderr == ""


def test_a_sync_says_when_a_sending_cap_holds_its_mail_back(tmp_path: Path) -> None:
    """With `[mail] max_per_day = 1`, the sync's own delivery sends one of its two activations; its mail line says
    the other waits for the cap, and until when."""
    config = site(tmp_path)
    config.write_text(config.read_text(encoding="utf-8") + "\n[mail]\nmax_per_day = 1\n", encoding="utf-8")
    done = piped("sync", "--config", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("mail: ")]
    assert line.startswith("mail: 1 sent, 0 failed, 1 left pending, held by the cap [mail] max_per_day until ")
    assert line.endswith(" UTC")


def test_json_output_puts_each_listed_record_on_one_line(tmp_path: Path) -> None:
    """`--json` for a log and for jq alike: the summary's members one per line, each rejection (a record deeper
    than the second level) whole on a line of its own, and the same document the standard library would read."""
    config = site(tmp_path)
    with (tmp_path / "erp.csv").open("a", encoding="utf-8") as erp:
        erp.write("".join(f"{n};Sklep {n};brak;b2b\n" for n in range(10, 40)))  # thirty invalid e-mails
    done = piped("sync", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["rejected"] == 31 and len(summary["rejections"]) == 31
    lines = done.stdout.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and '  "status": "ok",' in lines
    rejected = [line for line in lines if line.startswith('    {"erp_id": ')]
    assert len(rejected) == 31
    assert {json.loads(line.rstrip(","))["erp_id"] for line in rejected} == {"3", *map(str, range(10, 40))}

    history = piped("history", "--json", "--config", str(config))  # timestamps and nesting through the same printer
    assert history.returncode == 0, history.stderr[-2000:]
    [run] = json.loads(history.stdout)
    assert run["status"] == "ok" and run["started_at"].startswith("20")


def test_the_json_printer_writes_dates_and_decimals_as_text_at_every_depth(capsys: Any) -> None:
    from datetime import datetime
    from decimal import Decimal

    from integrator.cli.output import print_json

    data = {"at": datetime(2026, 11, 30, 12, 0), "runs": [{"at": datetime(2026, 11, 30), "d": [Decimal("1.50")]}],
            "empty": {}, "none": [], "n": {"a": {"b": (1, 2)}}}  # fmt: skip
    print_json(data)
    out = capsys.readouterr().out
    assert json.loads(out) == {"at": "2026-11-30T12:00:00", "runs": [{"at": "2026-11-30T00:00:00", "d": ["1.50"]}],
                               "empty": {}, "none": [], "n": {"a": {"b": [1, 2]}}}  # fmt: skip
    assert '    {"at": "2026-11-30T00:00:00", "d": ["1.50"]}' in out.splitlines()
    keyed = {True: 1, None: 2, 3: [{False: 4}], 1.5: {"a": {True: 5}}}  # names as the standard library writes them
    print_json(keyed)
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(keyed))
    try:
        print_json({"x": object()})
    except TypeError as exc:
        assert "object is not JSON serializable" in str(exc)
    else:
        raise AssertionError("an unknown type must not be written")
