"""The MIME message: headers, both parts, and Polish characters encoded for any relay and decoded intact."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime

from integrator.mail.message import build_message
from integrator.mail.templates import Rendered

RENDERED = Rendered(
    subject="Aktywacja konta – zażółć gęślą jaźń",
    text="Dzień dobry, Łukasz!\nŻółta łódź płynie.\n",
    html="<p>Dzień dobry, <b>Łukasz</b>!</p>",
)


def _build(**kwargs: object) -> bytes:
    message = build_message(
        RENDERED,
        sender="Hurtownia Łódź <no-reply@hurtownia.example.pl>",
        recipient="klient@example.pl",
        recipient_name="Źdźbło Sp. z o.o.",
        reply_to="Biuro <biuro@hurtownia.example.pl>",
        locale="pl",
        mail_id=42,
        now=datetime(2026, 11, 24, 10, 30),
        **kwargs,  # type: ignore[arg-type]
    )
    return bytes(message)


def test_headers_are_ascii_on_the_wire_and_decode_to_the_original() -> None:
    """Non-ASCII header words are RFC 2047 encoded; decoding gives back the exact Polish text."""
    raw = _build()
    head = raw.split(b"\n\n", 1)[0]
    head.decode("ascii")  # 7-bit clean headers
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == RENDERED.subject
    assert parsed["From"].addresses[0].display_name == "Hurtownia Łódź"
    assert parsed["From"].addresses[0].addr_spec == "no-reply@hurtownia.example.pl"
    assert parsed["To"].addresses[0].display_name == "Źdźbło Sp. z o.o."
    assert parsed["Reply-To"].addresses[0].addr_spec == "biuro@hurtownia.example.pl"
    assert parsed["Date"].datetime.isoformat() == "2026-11-24T10:30:00+00:00"
    assert parsed["Message-ID"].startswith("<") and parsed["Message-ID"].endswith("@hurtownia.example.pl>")
    assert "outbox-42" in parsed["Message-ID"]
    assert parsed["Content-Language"] == "pl" and parsed["Auto-Submitted"] == "auto-generated"


def test_text_and_html_alternatives_carry_utf8_bodies() -> None:
    """multipart/alternative with a UTF-8 text part first and the HTML part second, both decoding intact."""
    parsed = email.message_from_bytes(_build(), policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.iter_parts()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert plain.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    assert plain.get_content() == RENDERED.text
    assert html.get_content().strip() == RENDERED.html


def test_display_names_cannot_inject_headers() -> None:
    """A newline in an ERP name is flattened, so it cannot start a header of its own."""
    message = build_message(
        RENDERED, sender="B2B <b2b@example.pl>", recipient="k@example.pl", recipient_name="Evil\r\nBcc: x@evil.example"
    )
    parsed = email.message_from_bytes(bytes(message), policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert parsed["To"].addresses[0].display_name == "Evil Bcc: x@evil.example"
