"""The decision rules alone, without I/O: records in, staged writes and a plan out."""

from __future__ import annotations

from typing import Any

from integrator.config import RulesConfig
from integrator.reconcile import NOT_IN_SOURCE, MemoryLookups, Reconciler, erp_sort_key
from integrator.records import Record, fingerprint
from integrator.rules import build_engine


def rec(erp_id: str, email: str | None, tags: str = "b2b", **fields: Any) -> Record:
    return Record(erp_id=erp_id, name=f"Firma {erp_id}", email=email, tags=frozenset(tags.split()), **fields)


def live(erp_id: str, login: str, record: Record | None = None) -> tuple[str, str, str]:
    digest = fingerprint(record, login) if record else "0" * 16
    return erp_id, login, digest


def reconciler_for(accounts: list[tuple[str, str, str]], stage, **options):  # type: ignore[no-untyped-def]
    """A reconciler over live accounts given as (erp_id, login, fingerprint)."""
    return Reconciler(
        {erp_id: digest for erp_id, _, digest in accounts},
        build_engine(RulesConfig()),
        stage,
        lookups=MemoryLookups((erp_id, f"acc-{erp_id}", login) for erp_id, login, _ in accounts),
        **options,
    )


def run(ledger: list[tuple[str, str, str]], records: list[Record], scope: str | None = None):  # type: ignore[no-untyped-def]
    staged: list[tuple[str, str, str]] = []
    reconciler = reconciler_for(
        ledger,
        lambda action, erp_id, login, digest, record: staged.append((action, erp_id, login)),
        scope=scope,
    )
    reconciler.feed_all(records)
    plan = reconciler.finish()
    kept = [s for s in staged if s[1] not in plan.unstaged]
    return plan, kept


def test_numeric_erp_ids_sort_by_value_before_other_ids() -> None:
    """ "9" is smaller than "10", and numbers come before codes like "K001"."""
    assert sorted(["10", "K001", "9", "A"], key=erp_sort_key) == ["9", "10", "A", "K001"]


def test_unchanged_record_stages_nothing() -> None:
    """A record whose fingerprint matches its live account is counted unchanged and not staged."""
    record = rec("1", "a@example.pl")
    plan, staged = run([live("1", "a@example.pl", record)], [record])
    assert (plan.unchanged, staged, plan.removals) == (1, [], [])


def test_smallest_erp_id_wins_a_shared_new_login_whatever_the_order() -> None:
    """The winner of a shared login does not depend on the order the source returns rows in."""
    for order in (["12", "3", "7"], ["3", "12", "7"], ["7", "12", "3"]):
        plan, staged = run([], [rec(i, "x@example.pl") for i in order])
        assert staged == [("create", "3", "x@example.pl")]
        assert plan.rejected_by_reason["duplicate_email"] == 2 and plan.creates == 1


def test_loser_with_a_live_account_keeps_it_unchanged() -> None:
    """A customer whose new e-mail is taken is rejected but its account is neither updated nor removed."""
    a, b = rec("1", "a@example.pl"), rec("2", "b@example.pl")
    plan, staged = run([live("1", "a@example.pl", a), live("2", "b@example.pl", b)], [a, rec("2", "a@example.pl")])
    assert staged == [] and plan.removals == [] and plan.updates == 0
    assert [r.erp_id for r in plan.rejections] == ["2"]


def test_login_held_by_a_quarantined_customer_is_not_given_away() -> None:
    """A newcomer cannot take the login of an account whose record was quarantined this run."""
    owner = rec("5", "a@example.pl")
    garbled = owner._replace(problems=("active: cannot read 'x'",))
    plan, staged = run([live("5", "a@example.pl", owner)], [garbled, rec("1", "a@example.pl")])
    assert staged == [] and plan.removals == [] and len(plan.quarantined) == 1
    assert plan.rejected_by_reason["duplicate_email"] == 1


def test_chain_of_losers_settles() -> None:
    """When a loser keeps its old login, whoever hoped to take that login loses too."""
    a = rec("1", "a@example.pl")
    owner_of_b = rec("9", "b@example.pl")
    garbled_b = owner_of_b._replace(problems=("bad",))
    records = [garbled_b, rec("1", "b@example.pl"), rec("2", "a@example.pl")]
    plan, staged = run([live("1", "a@example.pl", a), live("9", "b@example.pl", owner_of_b)], records)
    assert staged == [] and plan.updates == 0 and plan.creates == 0
    assert sorted(r.erp_id for r in plan.rejections) == ["1", "2"]


def test_unkeyed_rows_defer_absence_removals() -> None:
    """Rows without an erp_id may be the missing customers, so absent accounts are not removed on a guess."""
    plan, _ = run(
        [live("1", "a@example.pl")],
        [Record("", "X", "a@example.pl", frozenset({"b2b"}), problems=("erp_id is empty",))],
    )
    assert plan.removals == [] and [r.erp_id for r in plan.deferred_removals] == ["1"]


def test_scope_limits_absence_removals_to_the_one_customer() -> None:
    """With --only, accounts of other customers are never taken as absent."""
    plan, _ = run([live("1", "a@example.pl"), live("2", "b@example.pl")], [], scope="2")
    assert [(r.erp_id, r.reasons) for r in plan.removals] == [("2", (NOT_IN_SOURCE,))]


def test_duplicate_erp_id_in_source_is_rejected() -> None:
    """The same erp_id twice in one read: the first counts, the second is rejected as duplicate_erp_id."""
    plan, staged = run([], [rec("1", "a@example.pl"), rec("1", "b@example.pl")])
    assert staged == [("create", "1", "a@example.pl")]
    assert plan.rejected_by_reason["duplicate_erp_id"] == 1


def test_skip_leaves_out_untagged_rows_without_an_account() -> None:
    """An untagged row of a customer with no account is counted as missing_tag without being judged."""
    reconciler = reconciler_for([], lambda *args: None, tag="b2b")
    assert reconciler.skip("7", "d" * 16, frozenset({"vip"})) is True
    assert reconciler.skip("8", "d" * 16, frozenset({"b2b"})) is False
    assert reconciler.skip("", "d" * 16, frozenset()) is False  # an unkeyed row is always looked at
    assert (reconciler.plan.records, reconciler.plan.rejected_by_reason["missing_tag"]) == (1, 1)


def test_skip_recognises_an_unchanged_row_and_claims_its_login() -> None:
    """A row whose digest matches its live account is unchanged, and a newcomer asking for its login loses."""
    staged: list[str] = []
    reconciler = reconciler_for(
        [("1", "a@example.pl", "f" * 16)], lambda action, erp_id, *rest: staged.append(erp_id), tag="b2b"
    )
    reconciler.feed(rec("2", "a@example.pl"))  # the newcomer comes first in the source
    assert reconciler.skip("1", "f" * 16, frozenset({"b2b"})) is True
    assert reconciler.skip("1", "f" * 16, frozenset({"b2b"})) is False  # a second row of one erp_id is judged
    plan = reconciler.finish()
    assert plan.unchanged == 1 and plan.unstaged == {"2"} and plan.rejected_by_reason["duplicate_email"] == 1
