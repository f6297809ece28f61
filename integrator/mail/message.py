"""Building the MIME message: headers, a text part and its HTML alternative, UTF-8 throughout.

Two builders make the same message. `build_raw` writes the bytes directly (about 40 times faster than the email
package, which parses every header it is given and refolds it when serialising: that was most of a delivery's
time): non-ASCII header words become RFC 2047 encoded-words, a body goes 7bit or 8bit when its lines are short
and otherwise quoted-printable or base64, whichever is shorter, as the email package would choose. It needs ASCII
addresses; `build_message` (`email.message.EmailMessage`, default policy) builds the rest, whose addresses need
SMTPUTF8, which smtplib negotiates from the message object.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import functools
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

from integrator.mail.templates import Rendered

__all__ = ["Outgoing", "build_message", "build_raw", "parse_sender", "raw_possible"]


def _token_hex(nbytes: int) -> str:
    """Random digits for Message-IDs and MIME boundaries, which must be unique, not secret: Python's generator,
    seeded from the system's random source (and again in a forked child), costs a mail no system call, where
    `secrets.token_hex` costs one each (dear on a virtual machine)."""
    return f"{random.getrandbits(nbytes * 8):0{nbytes * 2}x}"


@dataclass(frozen=True)
class Outgoing:
    """A message ready for a backend, with what the backend needs besides the MIME text."""

    mail_id: int
    kind: str
    envelope_from: str
    recipient: str
    raw: bytes
    """The whole message, lines ending in LF (the SMTP backend sends CRLF)."""
    built: EmailMessage | None = None
    """The email package's message, kept when an address is not ASCII (smtplib then asks for SMTPUTF8)."""

    @property
    def message(self) -> EmailMessage:
        """The message as an `EmailMessage` (parsed from `raw` when it was built as bytes)."""
        if self.built is not None:
            return self.built
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@functools.lru_cache(maxsize=64)
def parse_sender(sender: str) -> tuple[str, str]:
    """`(display name, address)` of a configured `"Name <addr@host>"` or bare address."""
    pairs = getaddresses([sender])
    name, address = pairs[0] if pairs else ("", "")
    return name, address


def _clean(text: str | None) -> str:
    # Display names come from the ERP; control characters must never reach a header.
    return " ".join((text or "").split())


def _address(display_name: str | None, addr_spec: str) -> Address:
    local, at, domain = addr_spec.rpartition("@")
    if at and not local.isascii():
        # RFC 6532 allows a UTF-8 local part (żaneta@…) under SMTPUTF8, but the email package refuses to parse one
        # (NonASCIILocalPartDefect): given as its two parts, it is written as it is.
        return Address(display_name=_clean(display_name), username=local, domain=domain)
    return Address(display_name=_clean(display_name), addr_spec=addr_spec)


def _date(now: datetime | None) -> str:
    if now is None:
        return _date_of_second(int(time.time()))
    return format_datetime(now.replace(tzinfo=UTC))


@functools.lru_cache(maxsize=4)
def _date_of_second(second: int) -> str:
    """The Date header of this second (RFC 5322 dates have no fraction): made once for the mails of a second."""
    return format_datetime(datetime.fromtimestamp(second, UTC))


def _message_id(sender_address: str, mail_id: int | None) -> str:
    """Short enough never to be folded: `<outbox-<id>.<random>@<sender domain>>`."""
    domain = sender_address.rpartition("@")[2] or "localhost"
    local = f"outbox-{mail_id}.{_token_hex(8)}" if mail_id is not None else _token_hex(12)
    return f"<{local}@{domain}>"


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
    message = EmailMessage()
    message["From"] = _address(sender_name, sender_address)
    if reply_to:
        reply_name, reply_address = parse_sender(reply_to)
        message["Reply-To"] = _address(reply_name, reply_address)
    message["To"] = _address(recipient_name, recipient)
    message["Subject"] = rendered.subject
    message["Date"] = _date(now)
    message["Message-ID"] = _message_id(sender_address, mail_id)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a robot
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    if locale:  # after add_alternative, which moves every Content-* header into the first part
        message["Content-Language"] = locale
    return message


# -- the direct builder ---------------------------------------------------------------------------------------
_SPECIALS = frozenset('()<>@,;:\\".[]')
_WORD_BYTES = 39
"""UTF-8 bytes per encoded-word: 52 base64 characters, so `Subject: =?utf-8?b?…?=` stays within 78 columns."""


def raw_possible(*addresses: str) -> bool:
    """Whether `build_raw` can write these addresses (ASCII only; others need SMTPUTF8)."""
    return all(a.isascii() for a in addresses)


def _encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 base64 encoded-words, each within `_WORD_BYTES` and never splitting a character."""
    words, chunk, size = [], [], 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > _WORD_BYTES and chunk:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk:
        words.append("".join(chunk))
    return [f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words]


def _unstructured(name: str, text: str) -> str:
    """`Name: text`, encoded when not ASCII."""
    text = _clean(text)
    if text.isascii():
        return _fold_tokens(f"{name}:", text.split(" "))
    return _fold_tokens(f"{name}:", _encoded_words(text))  # unstructured: whitespace between them is dropped


def _plain_atom(word: str) -> bool:
    return word.isascii() and "=?" not in word and not any(c in _SPECIALS for c in word)


def _phrase_tokens(display_name: str) -> list[str]:
    """A display name as phrase tokens: plain ASCII words bare, every run of other words as encoded-words.

    Runs split only at spaces (the space stays inside the earlier word), because Python's parser and some clients
    put a space between two adjacent encoded-words of a phrase, which RFC 2047 says to drop; a space split keeps
    the name right everywhere (at worst one space shown twice), where a split inside a word would show a gap.
    """
    tokens: list[str] = []
    run: list[str] = []

    def flush() -> None:
        chunks, chunk = [], ""
        for word in run:
            joined = f"{chunk} {word}" if chunk else word
            if chunk and len(joined.encode("utf-8")) > _WORD_BYTES:
                chunks.append(chunk + " ")
                chunk = word
            else:
                chunk = joined
        if chunk:
            chunks.append(chunk)
        for piece in chunks:
            tokens.extend(_encoded_words(piece))  # a single word longer than one encoded-word splits inside
        run.clear()

    for word in display_name.split(" "):
        if _plain_atom(word):
            flush()
            tokens.append(word)
        else:
            run.append(word)
    flush()
    return tokens


def _fold_tokens(prefix: str, tokens: list[str], suffix: str = "") -> str:
    """`prefix` + tokens separated by single spaces, a space becoming a fold where a line would pass 78."""
    lines, line = [], prefix.rstrip()
    for token in [*tokens, suffix] if suffix else tokens:
        if len(line) + 1 + len(token) > 78 and line != prefix.rstrip():
            lines.append(line)
            line = " " + token
        else:
            line = f"{line} {token}"
    lines.append(line)
    return "\n".join(lines)


def _address_header(name: str, display_name: str | None, addr_spec: str) -> str:
    display = _clean(display_name)
    if not display:
        return f"{name}: {addr_spec}"
    if display.isascii() and any(c in _SPECIALS for c in display):  # quoted, as the email package does
        quoted = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return _fold_tokens(f"{name}:", [quoted], f"<{addr_spec}>")
    return _fold_tokens(f"{name}:", _phrase_tokens(display), f"<{addr_spec}>")


@functools.lru_cache(maxsize=64)
def _fixed_headers(sender: str, reply_to: str | None) -> str:
    """From and Reply-To: the same for every mail of a delivery, so written once."""
    sender_name, sender_address = parse_sender(sender)
    lines = [_address_header("From", sender_name, sender_address)]
    if reply_to:
        reply_name, reply_address = parse_sender(reply_to)
        lines.append(_address_header("Reply-To", reply_name, reply_address))
    return "\n".join(lines)


def _base64_length(size: int) -> int:
    """The length of `base64.encodebytes` of `size` bytes: 76 characters and a newline per 57 bytes."""
    lines, rest = divmod(size, 57)
    return lines * 77 + (4 * -(-rest // 3) + 1 if rest else 0)


def _body(subtype: str, text: str) -> tuple[str, bytes]:
    """The part's headers and body: 7bit/8bit when every line fits 78 bytes, else the shorter of QP and base64."""
    data = ("\n".join(text.splitlines()) + "\n").encode("utf-8")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: '
    if max(map(len, data.split(b"\n"))) <= 78:
        return head + ("7bit" if data.isascii() else "8bit"), data
    quoted = binascii.b2a_qp(data, istext=True)
    if len(quoted) <= _base64_length(len(data)):  # mostly Latin text: quoted-printable, without encoding both
        return head + "quoted-printable", quoted
    return head + "base64", base64.encodebytes(data)


def build_raw(
    rendered: Rendered,
    *,
    sender: str,
    recipient: str,
    recipient_name: str | None = None,
    reply_to: str | None = None,
    locale: str | None = None,
    mail_id: int | None = None,
    now: datetime | None = None,
) -> bytes:
    """The same message as `build_message`, written as bytes (LF line ends); ASCII addresses only."""
    parts = [_body("plain", rendered.text), _body("html", rendered.html)]
    boundary = f"===============_{_token_hex(12)}=="
    while any(boundary.encode("ascii") in body for _, body in parts):  # never in practice; cheap to make sure
        boundary = f"===============_{_token_hex(12)}=="
    head = [
        _fixed_headers(sender, reply_to),
        _address_header("To", recipient_name, recipient),
        _unstructured("Subject", rendered.subject),
        f"Date: {_date(now)}",
        f"Message-ID: {_message_id(parse_sender(sender)[1], mail_id)}",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;\n boundary="{boundary}"',
    ]
    if locale:
        head.append(f"Content-Language: {_clean(locale)}")
    out = ["\n".join(head).encode("ascii"), b"\n"]
    for part_head, body in parts:
        out += [f"\n--{boundary}\n{part_head}\n\n".encode("ascii"), body]
    out.append(f"\n--{boundary}--\n".encode("ascii"))
    return b"".join(out)
