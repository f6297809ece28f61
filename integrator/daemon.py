"""The scheduled daemon: syncs and mail delivery on their own schedules (APScheduler 3.x).

Each job runs at most once at a time and missed runs coalesce into one, so a slow sync never piles up. A sync
that finds another one running (the store lock) just skips its turn. A sync that lost the store's connection (a
failover, a restart) is a transient failure: logged as such, and the next scheduled run goes on from what was
committed, on new sessions.
"""

from __future__ import annotations

import signal
from datetime import datetime
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from integrator.config import Config, parse_interval
from integrator.errors import IntegratorError, LockBusy, StoreConnectionLost
from integrator.logs import get_logger
from integrator.mail.delivery import deliver_pending
from integrator.store.db import open_store
from integrator.sync import run_sync

__all__ = ["build_scheduler", "make_trigger", "run_daemon"]

log = get_logger("daemon")


def make_trigger(spec: str) -> BaseTrigger:
    """An interval ("15m") or a cron line ("*/15 * * * *") as an APScheduler trigger."""
    seconds = parse_interval(spec)
    if seconds is not None:
        return IntervalTrigger(seconds=seconds)
    return CronTrigger.from_crontab(spec)


def _sync_job(config: Config, engine: Engine) -> None:
    try:
        # Every run that started ends with a summary, failed ones included (the run row says why).
        result = run_sync(config, engine=engine, trigger="daemon", catch_unexpected=True)
    except LockBusy as exc:
        log.info("sync_skipped", reason=str(exc))
        return
    except StoreConnectionLost as exc:  # before the run started
        log.warning("sync_transient_failure", error=str(exc), next_run="as scheduled")
        return
    except IntegratorError as exc:
        log.error("sync_error", error=str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - the daemon outlives one bad start; the next run is scheduled
        log.exception("sync_crashed", error=f"{type(exc).__name__}: {exc}")
        return
    if result.transient:
        log.warning("sync_transient_failure", run_id=result.run_id, error=result.message, next_run="as scheduled")
        return
    log.info("sync_done", run_id=result.run_id, status=result.status, message=result.message)


def _mail_job(config: Config, engine: Engine) -> None:
    try:
        report = deliver_pending(engine, config)
    except LockBusy as exc:  # a sync is delivering right now: its own delivery covers this turn
        log.info("mail_delivery_skipped", reason=str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - mail stays pending and is retried next time
        log.error("mail_delivery_error", error=f"{type(exc).__name__}: {exc}")
        return
    log.info("mail_delivered", report=str(report))


def build_scheduler(config: Config, engine: Engine | None = None, scheduler: Any = None) -> Any:
    """A scheduler with the sync and mail jobs; the first sync starts right away."""
    engine = engine or open_store(config.store.url)
    scheduler = scheduler or BlockingScheduler(timezone="UTC")
    options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}
    scheduler.add_job(
        _sync_job, make_trigger(config.schedule.sync), args=(config, engine), id="sync", name="sync",
        next_run_time=datetime.now().astimezone(), **options,
    )  # fmt: skip
    scheduler.add_job(
        _mail_job,
        make_trigger(config.schedule.mail),
        args=(config, engine),
        id="mail",
        name="mail delivery",
        **options,
    )
    return scheduler


def run_daemon(config: Config) -> None:
    """Run until SIGTERM or SIGINT; a running job finishes first."""
    scheduler = build_scheduler(config)

    def stop(signum: int, _frame: object) -> None:
        log.info("daemon_stopping", signal=signal.Signals(signum).name)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("daemon_started", sync=config.schedule.sync, mail=config.schedule.mail)
    scheduler.start()
