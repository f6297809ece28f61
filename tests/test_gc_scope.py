"""A sync keeps the cyclic garbage collector working for the whole process: the daemon runs syncs in a thread
beside its scheduler and mail jobs, whose reference cycles must still be collected while a sync runs. And
whatever a sync does to the collector, it undoes, even when it fails.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.erp import SqliteErp, make_config

from integrator.config import Config
from integrator.store.db import open_store
from integrator.sync import SyncResult, run_sync


class Cycle:
    """An object that refers to itself: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def collector_state() -> tuple[bool, tuple[int, ...], int]:
    return gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()


def cycle_collected_without_asking() -> bool:
    """Make a garbage cycle in this thread, then allocate as any busy thread does (no `gc.collect()`): whether
    the collector, running on its own, freed the cycle."""
    cycle = Cycle()
    ref = weakref.ref(cycle)
    del cycle
    held = [[] for _ in range(100_000)]  # 100,000 live containers: far past every generation's threshold
    del held
    return ref() is None


@pytest.fixture
def config(tmp_path: Path, sqlite_odbc: str) -> Config:
    erp = SqliteErp(tmp_path / "erp.db")
    for erp_id in range(1, 51):
        erp.add(erp_id)
    config = make_config(erp, f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    open_store(config.store.url)  # migrated before any sync thread starts
    return config


class Paused:
    """A sync in a thread of its own, held inside `run_sync` at its first progress report until `resume()`."""

    def __init__(self, config: Config, *, dry_run: bool = False, fail: bool = False) -> None:
        self.inside, self.go = threading.Event(), threading.Event()
        self.result: SyncResult | None = None
        self.error: BaseException | None = None
        self.fail = fail
        self.thread = threading.Thread(target=self._run, args=(config, dry_run))
        self.thread.start()
        assert self.inside.wait(60), "the sync never reported progress"

    def _progress(self, phase: str, count: int, total: int | None) -> None:
        if not self.inside.is_set():
            self.inside.set()
            assert self.go.wait(60)
            if self.fail:
                raise RuntimeError("the sync broke down mid-run")

    def _run(self, config: Config, dry_run: bool) -> None:
        try:
            self.result = run_sync(config, dry_run=dry_run, progress=self._progress)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def resume(self) -> None:
        self.go.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


@pytest.fixture
def restored() -> Iterator[None]:
    """The collector put back as it was, whatever a test (or a sync) left behind."""
    before = collector_state()
    yield
    if gc.get_freeze_count() and not before[2]:
        gc.unfreeze()
    gc.enable() if before[0] else gc.disable()
    gc.set_threshold(*before[1])


def test_other_threads_cycles_are_collected_while_a_sync_runs(config: Config, restored: None) -> None:
    """While a sync is under way in one thread, the collector stays enabled and frees a reference cycle another
    thread dropped; the sync finishes normally and leaves the collector as it found it."""
    before = collector_state()
    assert before[0] and cycle_collected_without_asking()
    sync = Paused(config)
    try:
        assert gc.isenabled() and cycle_collected_without_asking()
    finally:
        sync.resume()
    assert sync.error is None and sync.result is not None
    assert (sync.result.status, sync.result.created) == ("ok", 50)
    assert collector_state() == before


@pytest.mark.parametrize("enabled", [True, False], ids=["collector-on", "collector-off-by-caller"])
def test_a_failing_sync_leaves_the_collector_as_it_found_it(config: Config, restored: None, enabled: bool) -> None:
    """A sync that raises mid-run, and one whose source fails, restore the collector's exact previous state
    (enabled or not, thresholds, nothing left frozen); the collector ran during the failing sync."""
    gc.enable() if enabled else gc.disable()
    gc.set_threshold(900, 11, 12)
    before = collector_state()
    sync = Paused(config, fail=True)
    during = gc.isenabled()
    sync.resume()
    assert isinstance(sync.error, RuntimeError) and "broke down" in str(sync.error)
    assert during == enabled
    assert collector_state() == before

    broken = config.model_copy(update={"source": config.source.model_copy(update={"query": "SELECT nothing"})})
    assert run_sync(broken).status == "failed"
    assert collector_state() == before


def test_overlapping_syncs_share_one_freeze_and_leave_earlier_freezes_alone(config: Config, restored: None) -> None:
    """Two syncs at once (dry runs hold no lock): the collector stays on throughout and nothing stays frozen
    after the last; objects a caller froze before are still frozen after a sync."""
    before = collector_state()
    first = Paused(config, dry_run=True)
    second = Paused(config, dry_run=True)
    try:
        assert gc.isenabled() and cycle_collected_without_asking()
    finally:
        first.resume()
    assert gc.isenabled() and cycle_collected_without_asking()
    second.resume()
    assert first.error is None and second.error is None
    assert (first.result.status, second.result.status) == ("dry_run", "dry_run")
    assert collector_state() == (True, before[1], 0)

    marker = Cycle()
    gc.freeze()  # as a pre-forking server does
    assert run_sync(config).status == "ok"
    assert gc.get_freeze_count() > 0 and not any(o is marker for o in gc.get_objects())  # still frozen
