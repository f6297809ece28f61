"""The product run from outside, as cron and ops run it: the `integrator` executable on a config file written from
a test's `Config`, optionally killed with SIGKILL at a crash point (`INTEGRATOR_CRASH_AT=name:n`, see
`integrator/faults.py`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from integrator.config import Config

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))
CRASH_VARIABLE = "INTEGRATOR_CRASH_AT"

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

# Runs the CLI like the `integrator` script does, then reports how often the crash point named in the
# environment was reached (a target never reached kills nothing): tests size their kill points with it.
_COUNTING = """
import atexit, sys
import integrator.faults as faults
name = faults._TARGET[0]
atexit.register(lambda: print(f"checkpoint {name} reached {faults._hits.get(name, 0)} times", file=sys.stderr))
from integrator.cli import main
sys.argv[0] = "integrator"
main()
"""
_COUNTED = re.compile(r"checkpoint (\S+) reached (\d+) times")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's string escapes are all valid in a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A TOML document for nested dicts of strings, numbers, booleans and lists (None values are left out)."""
    lines = [
        f"{_key(k)} = {_value(v)}"
        for k, v in data.items()
        if v is not None and not isinstance(v, dict) and not _is_table_array(v)
    ]
    for k, v in data.items():
        name = prefix + _key(k)
        if isinstance(v, dict):
            lines += ["", f"[{name}]", to_toml(v, name + ".").rstrip("\n")]
        elif _is_table_array(v):
            for item in v:
                lines += ["", f"[[{name}]]", to_toml(item, name + ".").rstrip("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def write_config(config: Config, path: Path | None = None) -> Path:
    """Write `config` as the TOML file the CLI reads (by default at `config.path`); returns the path."""
    target = path or config.path
    assert target is not None, "the config has no path: pass one"
    data = config.model_dump(mode="json", by_alias=True, exclude={"path"})
    target.write_text(to_toml(data), encoding="utf-8")
    return target


def _config_file(config: Config | Path) -> Path:
    return config if isinstance(config, Path) else write_config(config)


def _env(crash_at: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_VARIABLE}
    if crash_at:
        env[CRASH_VARIABLE] = crash_at
    env.update(extra or {})
    return env


def integrator(
    config: Config | Path,
    *args: str,
    crash_at: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """`integrator ARGS --config FILE` in a child process (the config written to its file first)."""
    return subprocess.run(
        [INTEGRATOR, *args, "--config", str(_config_file(config))],
        env=_env(crash_at, env), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def integrator_json(config: Config | Path, *args: str, code: int = 0, **kwargs: Any) -> Any:
    """`integrator ARGS --json`, asserting its exit code; returns the parsed output."""
    done = integrator(config, *args, "--json", **kwargs)
    assert done.returncode == code, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    return json.loads(done.stdout)


def killed(config: Config | Path, *args: str, crash_at: str) -> subprocess.CompletedProcess[str]:
    """Run `integrator ARGS` with `INTEGRATOR_CRASH_AT=crash_at` and assert it died by SIGKILL there."""
    done = integrator(config, *args, crash_at=crash_at)
    assert done.returncode == -signal.SIGKILL, (
        f"expected death by SIGKILL at {crash_at}, got exit {done.returncode}",
        done.stdout[-2000:],
        done.stderr[-3000:],
    )
    return done


def count_checkpoints(config: Config | Path, *args: str, name: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run `integrator ARGS` to its end and count how often crash point `name` was reached on the way."""
    done = subprocess.run(
        [sys.executable, "-c", _COUNTING, *args, "--config", str(_config_file(config))],
        env=_env(f"{name}:{10**9}", None), capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    found = _COUNTED.findall(done.stderr)
    assert found and found[-1][0] == name, (done.returncode, done.stderr[-3000:])
    return done, int(found[-1][1])
