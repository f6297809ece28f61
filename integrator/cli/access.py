"""`integrator explain ERP_ID` and `integrator report`: who has access, and why (not)."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from integrator.cli.app import config_option, handle_errors, main, not_found
from integrator.cli.output import print_json, print_table, say, to_jsonable

if TYPE_CHECKING:
    from integrator.access import ContactExplanation
    from integrator.config import Config

__all__ = ["explain_command", "report_command"]


@main.command("explain")
@click.argument("erp_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@handle_errors
def explain_command(config: Config, erp_id: str, as_json: bool) -> None:
    """Every rule's verdict for ERP_ID now (with contacts: the customer's and each contact's), and the history of
    its accounts."""
    from integrator.access import explain
    from integrator.rules.reasons import DUPLICATE_EMAIL, DUPLICATE_USERNAME
    from integrator.store.db import open_store
    from integrator.store.queries import contact_label

    result = explain(config, open_store(config.store.url), erp_id)
    if not (result.in_source or result.identities or result.quarantine or result.last_actions or result.contacts):
        not_found("customer", "ERP id", erp_id)  # nowhere: not in the source, known to no run
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    stated = {rule.name: rule.reason for rule in config.rules.exclude}
    if not result.in_source and result.contacts is not None:
        say(f"{erp_id}: not returned by the customer query (its contacts are unknown_customer; their live "
                      "accounts would be removed)")  # fmt: skip
    elif not result.in_source:
        say(f"{erp_id}: not in the source (a live account would be removed as not_in_source)")
    else:
        if result.contacts is None:
            say(f"{erp_id}: {'eligible' if result.eligible else 'not eligible'}; login {result.login!r}")
        else:
            served = any(contact.eligible for contact in result.contacts)
            say(f"{erp_id}: {_customer_verdict(config, result.reasons, stated, served)}")
        for problem in result.problems:
            say(f"  unreadable: {problem}")
        verdicts = [[r.rule, "pass" if r.passed else "exclude", r.description or ""] for r in result.rules]
        print_table("Rules" if result.contacts is None else "The customer's rules", ["rule", "verdict", "reason"],
                    verdicts)  # fmt: skip
        for duplicate in (r for r in result.reasons if r in (DUPLICATE_EMAIL, DUPLICATE_USERNAME)):
            holder = f"customer {result.login_held_by}" if result.login_held_by else "another customer"
            say(f"  {duplicate}: {holder} keeps or gets this login")
    if result.contacts:
        _print_contacts(config, result.contacts, stated)
    if result.quarantine:
        say(f"quarantined since run {result.quarantine['first_run_id']}: {result.quarantine['error']}")
    for account in result.identities:
        contact = f", contact {contact_label(account)}" if account["contact_id"] is not None else ""
        print_table(
            f"Identity {account['id']} ({account['status']}{', blocked' if account['blocked'] else ''}{contact})",
            ["at", "event", "actor", "run", "details"],
            [[e["at"], e["kind"], e["actor"], e["run_id"], e["changes"] or ""] for e in account["events"]],
        )
        if account["attributes"]:
            say(f"  attributes: {json.dumps(account['attributes'], ensure_ascii=False)}")
    if result.last_actions:
        contacts = any(a["contact_id"] is not None for a in result.last_actions)
        print_table("Recent sync actions", ["run", *(["contact"] if contacts else []), "action", "reason"],
                    [[a["run_id"], *([a["contact_id"]] if contacts else []), a["action"], a["reason"]]
                     for a in result.last_actions])  # fmt: skip


def _customer_verdict(config: Config, reasons: list[str], stated: dict[str, str], served: bool) -> str:
    """What a customer's own verdict means when its contacts get the accounts (`served`: one of them does)."""
    from integrator.rules.reasons import NO_ELIGIBLE_CONTACT, describe

    if not reasons and served:
        return "eligible; accounts are per contact person (see Contacts)"
    if not reasons:  # its contacts pass their rules, but lose their logins to others
        return "eligible, but none of its contact persons gets an account (see Contacts)"
    if reasons == [NO_ELIGIBLE_CONTACT]:
        return "eligible, but none of its contact persons is (no_eligible_contact): no account"
    why = "; ".join(describe(r, config.rules.tag, stated) for r in reasons if r != NO_ELIGIBLE_CONTACT)
    return f"not eligible ({why}): none of its contact persons gets an account"


def _print_contacts(config: Config, contacts: list[ContactExplanation], stated: dict[str, str]) -> None:
    """One row per contact person: its verdict in words and its account."""
    from integrator.rules.reasons import describe

    rows = []
    for contact in contacts:
        if not contact.in_source:
            verdict = "not in the source"
        elif contact.eligible:
            verdict = "eligible"
        else:
            verdict = "; ".join([*contact.problems, *(describe(r, config.rules.tag, stated) for r in contact.reasons
                                                      if not r.startswith("unreadable: "))])  # fmt: skip
            if contact.login_held_by:
                holder = contact.login_held_by
                who = f"customer {holder['erp_id']}" + (
                    f", contact {holder['contact_id']}" if holder["contact_id"] else ""
                )
                verdict += f" ({who} keeps or gets this login)"
        account = contact.account
        shown = f"{account['status']}{', blocked' if account['blocked'] else ''} {account['id']}" if account else "none"
        rows.append([contact.contact_id, contact.name, contact.login, verdict, shown])
    print_table("Contacts", ["contact", "name", "login", "verdict", "account"], rows)


@main.command("report")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file, not stdout.")
@config_option
@handle_errors
def report_command(config: Config, fmt: str, output: Path | None) -> None:
    """Access status of every ERP customer: eligible or why not, account status, activated, last login."""
    from integrator.access import ReportRow, report
    from integrator.store.db import open_store

    rows = report(config, open_store(config.store.url))
    stream = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        if fmt == "csv":
            writer = csv.writer(stream)
            writer.writerow([f.name for f in dataclasses.fields(ReportRow)])
            for row in rows:
                writer.writerow(dataclasses.astuple(row))
        else:
            stream.write("[")
            for index, row in enumerate(rows):
                item = json.dumps(to_jsonable(dataclasses.asdict(row)), ensure_ascii=False)
                stream.write(("," if index else "") + "\n  " + item)
            stream.write("\n]\n")
    finally:
        if output:
            stream.close()
