"""Building the MIME message: headers, a text part and its HTML alternative, UTF-8 throughout.

`email.message.EmailMessage` with the default policy encodes non-ASCII header words (RFC 2047) and picks
quoted-printable or base64 for the bodies, so Polish names and text arrive intact through any relay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from secrets import token_hex

from integrator.mail.templates import Rendered

__all__ = ["Outgoing", "build_message", "parse_sender"]


@dataclass(frozen=True)
class Outgoing:
    """A message ready for a backend, with what the backend needs besides the MIME text."""

    mail_id: int
    kind: str
    envelope_from: str
    recipient: str
    message: EmailMessage


def parse_sender(sender: str) -> tuple[str, str]:
    """`(display name, address)` of a configured `"Name <addr@host>"` or bare address."""
    pairs = getaddresses([sender])
    name, address = pairs[0] if pairs else ("", "")
    return name, address


def _clean(text: str | None) -> str:
    # Display names come from the ERP; control characters must never reach a header.
    return " ".join((text or "").split())


def _address(display_name: str | None, addr_spec: str) -> Address:
    return Address(display_name=_clean(display_name), addr_spec=addr_spec)


def build_message(
    rendered: Rendered,
    *,
    sender: str,
    recipient: str,
    recipient_name: str | None = None,
    reply_to: str | None = None,
    locale: str | None = None,
    mail_id: int | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The complete message: From/Reply-To/To/Subject/Date/Message-ID, text/plain with a text/html alternative."""
    sender_name, sender_address = parse_sender(sender)
    domain = sender_address.rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = _address(sender_name, sender_address)
    if reply_to:
        reply_name, reply_address = parse_sender(reply_to)
        message["Reply-To"] = _address(reply_name, reply_address)
    message["To"] = _address(recipient_name, recipient)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime((now or datetime.now(UTC)).replace(tzinfo=UTC))
    # Short enough never to be folded: `<outbox-<id>.<random>@<sender domain>>`.
    local = f"outbox-{mail_id}.{token_hex(8)}" if mail_id is not None else token_hex(12)
    message["Message-ID"] = f"<{local}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a robot
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    if locale:  # after add_alternative, which moves every Content-* header into the first part
        message["Content-Language"] = locale
    return message
