"""A real SMTP server for tests (aiosmtpd on loopback) that records what it accepts and misbehaves on request."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return part.get_content()

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None
        return part.get_content()


@dataclass
class RecordingHandler:
    """Accepts and records messages; `refuse` / `defer` script replies to RCPT TO for chosen addresses."""

    received: list[Received] = field(default_factory=list)
    sessions: int = 0
    _scripts: dict[str, list[str | None]] = field(default_factory=dict)
    _always: dict[str, str] = field(default_factory=dict)

    def refuse(self, address: str, reply: str = "550 5.1.1 Mailbox unavailable") -> None:
        """Answer every RCPT TO for `address` with `reply`."""
        self._always[address.lower()] = reply

    def defer(self, address: str, reply: str = "451 4.3.0 Try again later", times: int = 1) -> None:
        """Answer the next `times` RCPT TOs for `address` with `reply`, then accept."""
        self._scripts.setdefault(address.lower(), []).extend([reply] * times)

    def clear(self) -> None:
        """Accept everything from now on."""
        self._scripts.clear()
        self._always.clear()

    def to(self, address: str) -> list[Received]:
        """Messages accepted for `address`."""
        return [r for r in self.received if address.lower() in (a.lower() for a in r.rcpt_tos)]

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.sessions += 1
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        key = address.lower()
        if key in self._always:
            return self._always[key]
        script = self._scripts.get(key)
        if script:
            reply = script.pop(0)
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        self.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(raw)))
        return "250 2.0.0 Message accepted for delivery"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost (openssl CLI): (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
         "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class SmtpServer:
    """aiosmtpd on 127.0.0.1; `security` none | starttls | tls; optional required login; stop/start at will."""

    def __init__(
        self,
        *,
        security: str = "none",
        certificate: tuple[Path, Path] | None = None,
        credentials: tuple[str, str] | None = None,
        smtputf8: bool = True,
        handler: RecordingHandler | None = None,
    ) -> None:
        self.handler = handler or RecordingHandler()
        self.smtputf8 = smtputf8
        """Whether the server offers SMTPUTF8 (aiosmtpd does by default)."""
        self.port = free_port()
        self.security = security
        self.certificate = certificate
        self.credentials = credentials
        self._controller: Controller | None = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (
            self.credentials is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 235 / 535 itself

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.security != "none":
            assert self.certificate is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.certificate[0]), str(self.certificate[1]))
            if self.security == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        if self.credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
            # aiosmtpd cannot see implicit TLS, so it would hide AUTH (aiosmtpd issue #281).
            kwargs["auth_require_tls"] = self.security == "starttls"
        kwargs["enable_SMTPUTF8"] = self.smtputf8
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
