"""The deletion guard: a run that would remove too much, or that read nothing, is refused whole.

Like octodns' `Plan.raise_if_unsafe`: a count limit, a share limit checked only once enough accounts are live
(small bases change by large shares legitimately), and an empty source while accounts exist.
"""

from __future__ import annotations

from integrator.config import SafetyConfig
from integrator.errors import GuardRefusal
from integrator.identity import ids_of
from integrator.reconcile import Plan

__all__ = ["check_plan"]


def _refused(plan: Plan) -> list[dict[str, str]]:
    return [
        {**ids_of(r.erp_id), "account_id": r.account_id, "login": r.login, "reasons": ", ".join(r.reasons)}
        for r in plan.removals
    ]


def check_plan(plan: Plan, safety: SafetyConfig, *, allow_mass_removal: bool, scoped: bool = False) -> None:
    """Raise `GuardRefusal` (listing every refused removal) when the plan is unsafe."""
    live = plan.live_before
    if allow_mass_removal:
        return
    if plan.records == 0 and live > 0 and not scoped:
        raise GuardRefusal(
            f"the source returned no records while {live} accounts are live; refusing to remove them "
            "(check the query and the ERP connection; --allow-mass-removal overrides)",
            _refused(plan),
        )
    removals = len(plan.removals)
    if removals > safety.max_removals:
        raise GuardRefusal(
            f"the run would remove {removals} accounts, more than [safety] max_removals = {safety.max_removals}; "
            "nothing was applied (rerun with --allow-mass-removal if this is intended)",
            _refused(plan),
        )
    if live >= safety.min_live_for_percent and live > 0:
        share = removals * 100 / live
        if share > safety.max_removal_percent:
            raise GuardRefusal(
                f"the run would remove {removals} of {live} live accounts ({share:.1f} %), more than "
                f"[safety] max_removal_percent = {safety.max_removal_percent:g}; nothing was applied "
                "(rerun with --allow-mass-removal if this is intended)",
                _refused(plan),
            )
