"""The login contest does not depend on the order the source returns rows in: `erp_sort_key` is a total order
(`7` and `007` are different ids), checked by hand, through `integrator sync` on a CSV in both orders, and by
shuffling random sources fed to the Reconciler."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from integrator.config import RulesConfig
from integrator.reconcile import MemoryLookups, Reconciler, erp_sort_key
from integrator.records import Record
from integrator.rules import build_engine

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def test_erp_sort_key_is_a_total_order() -> None:
    """Equal numbers are told apart by their text, only ASCII digits are numbers, and no id is too long."""
    ids = ["10", "9", "007", "7", "07", "0", "", "K1", "٧", "７", "9" * 5000]
    assert len({erp_sort_key(i) for i in ids}) == len(ids)
    assert sorted(ids, key=erp_sort_key) == ["0", "007", "07", "7", "9", "10", "9" * 5000, "", "K1", "٧", "７"]


def sync_csv(tmp_path: Path, name: str, rows: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`integrator sync --json` on a CSV of these rows into a store of its own; the summary and the accounts."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "erp.csv").write_text("erp_id;name;email;tags\n" + "".join(f"{r}\n" for r in rows), encoding="utf-8")
    config = folder / "config.toml"
    config.write_text('[source]\nkind = "csv"\npath = "erp.csv"\n[mail]\ndeliver_after_sync = false\n')

    def run(*args: str) -> Any:
        done = subprocess.run(
            [INTEGRATOR, *args, "--json", "--config", str(config)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run("sync"), run("accounts", "list")


def test_the_same_csv_in_either_order_gives_the_same_winner(tmp_path: Path) -> None:
    """Customers `7` and `007` share an e-mail: `007` (the same number, smaller text) wins whichever row is first."""
    seven, zero_zero_seven = "7;Siódemka;wspolny@firma.pl;b2b", "007;Zero zero siedem;wspolny@firma.pl;b2b"
    outcomes = []
    for name, rows in (("forward", [seven, zero_zero_seven]), ("backward", [zero_zero_seven, seven])):
        summary, accounts = sync_csv(tmp_path, name, rows)
        outcomes.append(
            (
                [(a["erp_id"], a["login"]) for a in accounts],
                [(r["erp_id"], r["reasons"]) for r in summary["rejections"]],
            )
        )
    assert outcomes == [([("007", "wspolny@firma.pl")], [("7", "duplicate_email")])] * 2


# -- shuffling never changes a plan ------------------------------------------------------------------------------
ERP_IDS = ("7", "007", "07", "9", "10", "٧", "７", "K1", "k1")
EMAILS = ("a@firma.pl", " A@Firma.pl", "b@firma.pl", "b@firma.pl ", "c@firma.pl", "zly-adres", None)
LOGINS = ("a@firma.pl", "b@firma.pl", "c@firma.pl", "d@firma.pl")

records = st.lists(
    st.builds(
        lambda erp_id, email, tagged, active: Record(
            erp_id=erp_id,
            name=f"Firma {erp_id}",
            email=email,
            tags=frozenset({"b2b"} if tagged else ()),
            active=active,
        ),
        st.sampled_from(ERP_IDS),
        st.sampled_from(EMAILS),
        st.booleans(),
        st.booleans(),
    ),
    unique_by=lambda r: r.erp_id,  # a repeated erp_id is duplicate_erp_id for the later row: order decides that
    max_size=len(ERP_IDS),
)
ledgers = st.lists(
    st.tuples(st.sampled_from(ERP_IDS), st.sampled_from(LOGINS)), unique_by=(lambda a: a[0], lambda a: a[1])
)


def plan_of(live: list[tuple[str, str]], source: list[Record]) -> tuple[Any, ...]:
    """What a run would do: staged creates and updates with their logins, rejections, removals and counts."""
    staged: list[tuple[str, str, str]] = []
    reconciler = Reconciler(
        dict.fromkeys((erp_id for erp_id, _ in live), "0" * 16),
        build_engine(RulesConfig()),
        lambda action, erp_id, login, digest, record: staged.append((action, erp_id, login)),
        lookups=MemoryLookups((erp_id, f"acc-{erp_id}", login) for erp_id, login in live),
    )
    reconciler.feed_all(source)
    plan = reconciler.finish()
    kept = {s for s in staged if s[1] not in plan.unstaged}
    return (
        {(erp_id, login) for action, erp_id, login in kept if action == "create"},
        {(erp_id, login) for action, erp_id, login in kept if action == "update"},
        Counter((r.erp_id, r.reasons) for r in plan.rejections),
        {(r.erp_id, r.reasons) for r in plan.removals},
        (plan.creates, plan.updates, plan.unchanged, plan.rejected, dict(plan.rejected_by_reason)),
    )


@settings(max_examples=400, deadline=None)
@given(live=ledgers, source=records, shuffled=st.randoms(use_true_random=False))
def test_shuffling_the_source_never_changes_the_plan(
    live: list[tuple[str, str]], source: list[Record], shuffled: Any
) -> None:
    """Same live accounts, same records in another order: the same creates, staged logins, rejections, removals."""
    other = list(source)
    shuffled.shuffle(other)
    assert plan_of(live, other) == plan_of(live, source)
