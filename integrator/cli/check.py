"""`integrator check`: validate the config and try every part (store, source, rules, mail) before going live."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from integrator.cli.app import EXIT_ERROR, config_option, handle_errors, main
from integrator.cli.output import print_json, print_table, say
from integrator.errors import IntegratorError

if TYPE_CHECKING:
    from integrator.config import Config
    from integrator.records import Contact, Record

__all__ = ["check_command"]


def _step(name: str, results: list[dict[str, str]], action: Callable[[], str]) -> bool:
    try:
        detail = action()
    except IntegratorError as exc:
        results.append({"check": name, "ok": "no", "detail": str(exc)})
        return False
    results.append({"check": name, "ok": "yes", "detail": detail})
    return True


def contact_record(contact: Contact) -> Record:
    """A contact on its own, as the contact rules read it (its customer's fields are not looked up here)."""
    from integrator.records import Record

    return Record(erp_id=contact.erp_id, name=contact.name, email=contact.email, tags=frozenset(),
                  username=contact.username, contact_id=contact.contact_id, contact_name=contact.name,
                  contact_active=contact.active, access=contact.access)  # fmt: skip


@main.command("check")
@click.option("--records", "sample", default=10, show_default=True, help="How many source records to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@handle_errors
def check_command(config: Config, sample: int, as_json: bool) -> None:
    """Validate the config, reach the store and the source, show the first records and their verdicts."""
    from integrator.connectors import make_connector
    from integrator.identity import login_function
    from integrator.rules import build_customer_engine, build_engine
    from integrator.rules.engine import contact_engine
    from integrator.store.db import open_store, redact_url

    results: list[dict[str, str]] = [{"check": "config", "ok": "yes", "detail": str(config.path)}]
    _step("store", results, lambda: (open_store(config.store.url), "reachable, schema up to date: "
                                     + redact_url(config.store.url))[1])  # fmt: skip
    contacts = config.source.has_contacts
    # With contacts, a customer is judged by its own rules here; its contacts get the e-mail and the rest.
    engine = (
        build_customer_engine(config.rules) if contacts else build_engine(config.rules, login=config.accounts.login)
    )
    login_of = login_function(config.accounts.login)
    verdicts: list[dict[str, str]] = []
    contact_verdicts: list[dict[str, str]] = []

    def read_source() -> str:
        connector = make_connector(config.source)
        for record in itertools.islice(connector.records(), sample):
            if record.problems:
                verdict = "quarantine: " + "; ".join(record.problems)
            else:
                outcome = engine.evaluate(record)
                verdict = "eligible" if outcome.keep else "left out: " + ", ".join(outcome.reasons)
            verdicts.append({"erp_id": record.erp_id, "name": record.name or "",
                             "login": "" if contacts else login_of(record), "verdict": verdict})  # fmt: skip
        return f"{connector.describe()}: read {len(verdicts)} record(s)"

    def read_contacts() -> str:
        rules = contact_engine(config.accounts.login)
        for contact in itertools.islice(make_connector(config.source).contacts(), sample):
            record = contact_record(contact)
            if contact.problems:
                verdict = "quarantine: " + "; ".join(contact.problems)
            else:
                outcome = rules.evaluate(record)
                verdict = "eligible if its customer is" if outcome.keep else "left out: " + ", ".join(outcome.reasons)
            contact_verdicts.append(
                {"erp_id": contact.erp_id, "contact_id": contact.contact_id or "", "name": contact.name or "",
                 "login": login_of(record), "verdict": verdict}
            )  # fmt: skip
        return f"read {len(contact_verdicts)} contact(s)"

    fits = True
    if config.source.preset:  # first: every table and column the preset reads exists (names the missing ones)
        from integrator.connectors.odbc_fetch import OdbcFetch

        fits = _step("preset schema", results, lambda: OdbcFetch(config.source).verify_preset())
    if fits:
        _step("source", results, read_source)
        if contacts:
            _step("contacts", results, read_contacts)
    from integrator.mail.checks import check_mail

    for name, ok, detail in check_mail(config):
        results.append({"check": name, "ok": "yes" if ok else "no", "detail": detail})
    failed = any(r["ok"] != "yes" for r in results)
    if as_json:
        print_json({"ok": not failed, "checks": results, "records": verdicts, "contacts": contact_verdicts})
    else:
        print_table("Checks", ["check", "ok", "detail"], [[r["check"], r["ok"], r["detail"]] for r in results])
        if verdicts:
            print_table("First records", ["erp_id", "name", "login", "verdict"],
                        [[v["erp_id"], v["name"], v["login"], v["verdict"]] for v in verdicts])  # fmt: skip
        if contact_verdicts:
            print_table("First contacts", ["erp_id", "contact_id", "name", "login", "verdict"],
                        [list(v.values()) for v in contact_verdicts])  # fmt: skip
        say("all checks passed" if not failed else "some checks failed")
    sys.exit(EXIT_ERROR if failed else 0)
