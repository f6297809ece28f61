"""The message written directly as bytes (`build_raw`, what delivery sends at go-live speed) reads exactly like the
email package's (`build_message`): same headers and bodies, 7-bit clean headers within 78 columns, names intact."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest
from support.mailstore import mail_config, queue, seed_account

from integrator.mail.delivery import deliver_pending
from integrator.mail.message import build_message, build_raw
from integrator.mail.templates import Rendered
from integrator.store.db import open_store

RENDERED = [
    Rendered("Aktywacja konta – zażółć gęślą jaźń", "Dzień dobry, Łukasz!\nŻółta łódź płynie.\n", "<p>Łódź</p>"),
    Rendered(
        "A plain ASCII subject long enough to need folding somewhere past the seventy-eighth column of its line",
        "ascii only\r\nsecond line",
        "<p>" + "x" * 300 + "</p>",
    ),
    Rendered("Ż" * 60, "Ż" * 100 + "\n" + "a" * 200, "<html>" + "Żółć gęślą " * 60 + "</html>"),
]
NAMES = [
    None,
    "Źdźbło Sp. z o.o.",
    'Firma "Cudzysłów", Kowalski & syn',
    "Evil\r\nBcc: x@evil.example",
    "Sklep „Żółć” Jan Łęcki z bardzo długą nazwą firmy, która się nie mieści w jednej linii nagłówka",
    "Przedsiębiorstwo Handlowo-Usługowe Żółćgęśląjaźńżółćgęśląjaźńżółćgęśląjaźń",
]
SPLIT_INSIDE = NAMES[-1]
"""A name with non-ASCII runs longer than one encoded-word: RFC 2047 decoders join its words back, Python's
address parser shows a space between them (as it does for the email package's own output)."""


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize("rendered", RENDERED)
@pytest.mark.parametrize("name", NAMES)
def test_raw_message_reads_like_the_email_packages(rendered: Rendered, name: str | None) -> None:
    """Every header and both parts decode to what build_message gives; the display name decodes to the ERP's
    (whitespace flattened, so a newline cannot start a header); nothing is reported as a defect."""
    fields = {
        "sender": "Hurtownia Łódź B2B <no-reply@hurtownia.example.pl>", "recipient": "klient@example.pl",
        "recipient_name": name, "reply_to": "Biuro Obsługi <biuro@hurtownia.example.pl>", "locale": "pl",
        "mail_id": 42, "now": datetime(2026, 11, 24, 10, 30),
    }  # fmt: skip
    expected = _parse(bytes(build_message(rendered, **fields)))  # type: ignore[arg-type]
    raw = build_raw(rendered, **fields)  # type: ignore[arg-type]
    got = _parse(raw)
    head = raw.split(b"\n\n", 1)[0]
    head.decode("ascii")
    assert max(len(line) for line in raw.split(b"\n")) <= 78
    for header in ("From", "Reply-To", "Subject", "Date", "Auto-Submitted", "Content-Language", "MIME-Version"):
        assert str(got[header]) == str(expected[header]), header
    assert got["Bcc"] is None
    assert got["Message-ID"].startswith("<outbox-42.") and got["Message-ID"].endswith("@hurtownia.example.pl>")
    flat = " ".join((name or "").split())
    [to] = got["To"].addresses
    assert to.addr_spec == "klient@example.pl" and (to.display_name == flat or name == SPLIT_INSIDE)
    if not any(c in '()<>@,;:\\".[]' for c in flat):  # else a quoted string, which the legacy decoder keeps quoted
        folded = email.message_from_bytes(raw, policy=email.policy.compat32)["To"]
        want = f"{flat} <klient@example.pl>" if flat else "klient@example.pl"
        assert str(make_header(decode_header(folded))) == want  # as an RFC 2047 decoder joins encoded-words
    assert got.get_content_type() == "multipart/alternative"
    plain, html = got.iter_parts()
    want_plain, want_html = expected.iter_parts()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert plain.get_content() == want_plain.get_content() and html.get_content() == want_html.get_content()
    assert got.defects == plain.defects == html.defects == []


def test_delivery_writes_ascii_addresses_fast_and_others_through_the_email_package(tmp_path: Path) -> None:
    """Delivered to the file backend, a mail to an ASCII address and one to a Unicode domain (which needs
    SMTPUTF8, so the email package builds it) both arrive whole, each with its own To and the activation link."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_store(url)
    config = mail_config(tmp_path, url, backend="file", file={"directory": str(tmp_path / "mail")})
    for login in ("jan@example.pl", "zaneta@żółw.example.pl"):
        queue(engine, seed_account(engine, login, name="Sklep „Żółć” Jan Łęcki"))
    assert deliver_pending(engine, config).sent == 2
    engine.dispose()
    received = {}
    for eml in (tmp_path / "mail").glob("*.eml"):
        # The internationalised one has UTF-8 headers (RFC 6532), which Python reads from text, not bytes.
        message = email.message_from_string(eml.read_bytes().decode("utf-8"), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        [to] = message["To"].addresses
        assert to.display_name == "Sklep „Żółć” Jan Łęcki"
        text = message.get_body(preferencelist=("plain",))
        assert text is not None and "https://b2b.hurtownia.example.pl/activate?token=" in text.get_content()
        received[to.addr_spec] = message
    assert set(received) == {"jan@example.pl", "zaneta@żółw.example.pl"}
