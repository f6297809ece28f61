"""The daemon's schedule, on the real APScheduler: triggers from the config, and jobs that sync and deliver."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from support.erp import SqliteErp, make_config

from integrator.daemon import build_scheduler, make_trigger
from integrator.store.db import open_store
from integrator.store.schema import accounts, outbox, runs


def test_interval_and_cron_specs_become_triggers() -> None:
    """ "90s", "15m" and "1h" are intervals; a crontab line is a cron trigger."""
    assert make_trigger("90s").interval.total_seconds() == 90
    assert isinstance(make_trigger("15m"), IntervalTrigger) and make_trigger("1h").interval.total_seconds() == 3600
    assert isinstance(make_trigger("*/15 * * * *"), CronTrigger)


def test_daemon_jobs_sync_and_deliver_on_schedule(tmp_path: Path, sqlite_odbc: str) -> None:
    """Started, the scheduler runs a sync at once (accounts created) and delivers the queued mail on its own job."""
    erp = SqliteErp(tmp_path / "erp.db")
    erp.add(1)
    erp.add(2, tags="")
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path, schedule={"sync": "1h", "mail": "1s"})
    engine = open_store(config.store.url)
    scheduler = build_scheduler(config, engine, BackgroundScheduler(timezone="UTC"))
    assert {job.id for job in scheduler.get_jobs()} == {"sync", "mail"}
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                sent = conn.execute(sa.select(sa.func.count()).where(outbox.c.status == "sent")).scalar()
            if sent:
                break
            time.sleep(0.2)
    finally:
        scheduler.shutdown(wait=True)
    with engine.connect() as conn:
        assert conn.execute(sa.select(runs.c.trigger, runs.c.status)).all() == [("daemon", "ok")]
        assert conn.execute(sa.select(accounts.c.erp_id)).scalars().all() == ["1"]
        assert conn.execute(sa.select(outbox.c.status)).scalars().all() == ["sent"]
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1


@pytest.mark.parametrize("spec", ["0s", "soon", "61 * * * *"])
def test_bad_schedule_is_a_config_error(tmp_path: Path, spec: str) -> None:
    """A schedule that is neither a positive interval nor a valid cron line is refused at load."""
    from integrator.config import config_from_dict
    from integrator.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[schedule.sync\]"):
        config_from_dict({"source": {"kind": "csv", "path": "x.csv"}, "schedule": {"sync": spec}}, tmp_path / "c.toml")
