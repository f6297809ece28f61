"""Delivery backends: `smtp`, `file` (one .eml per mail) and `console`, behind one small Protocol.

A backend lives for one batch: `send` is called per mail and `close` once at the end, so the SMTP backend
opens one connection lazily and reuses it for the whole batch (reconnecting only after an error dropped it).
Backends turn their own failures into `integrator.mail.errors` so delivery can decide: retry, defer, or fail.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from integrator.config import MailConfig, SmtpConfig
from integrator.errors import ConfigError
from integrator.mail.errors import BackendUnavailable, PermanentDeliveryError, TransientDeliveryError
from integrator.mail.message import Outgoing

__all__ = ["BACKENDS", "ConsoleBackend", "FileBackend", "MailBackend", "SmtpBackend", "make_backend"]


class MailBackend(Protocol):
    """Hands messages to the outside world; raises `integrator.mail.errors` on failure."""

    def send(self, outgoing: Outgoing) -> None:
        """Deliver one message; return only once the backend has accepted it."""

    def close(self) -> None:
        """End the batch (quit the SMTP session); safe to call more than once."""


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {' '.join(text.split())}"


class SmtpBackend:
    """SMTP with `security` none | starttls | tls, optional login, a timeout, and one connection per batch."""

    def __init__(self, settings: SmtpConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        # The default context verifies the server against the system CAs (SSL_CERT_FILE points elsewhere).
        self.ssl_context = ssl_context
        self._conn: smtplib.SMTP | None = None

    @classmethod
    def from_config(cls, config: MailConfig) -> SmtpBackend:
        return cls(config.smtp)

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        where = f"SMTP server {s.host}:{s.port} ({s.security})"
        conn: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context())
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            conn.ehlo()
            if s.security == "starttls":
                conn.starttls(context=self._context())
                conn.ehlo()
            if s.username:
                conn.login(s.username, s.password or "")
        except smtplib.SMTPResponseException as exc:
            self._abandon(conn)
            raise BackendUnavailable(f"{where} refused the session: {_smtp_reply(exc)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            self._abandon(conn)
            raise BackendUnavailable(f"{where}: {exc}") from None
        except UnicodeEncodeError:
            self._abandon(conn)  # smtplib sends AUTH credentials as ASCII only
            raise BackendUnavailable(f"{where}: [mail.smtp] username and password must be ASCII") from None
        except (OSError, smtplib.SMTPException) as exc:
            self._abandon(conn)
            raise BackendUnavailable(f"cannot reach {where}: {type(exc).__name__}: {exc}") from None
        return conn

    @staticmethod
    def _abandon(conn: smtplib.SMTP | None) -> None:
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def probe(self) -> str:
        """Connect, negotiate TLS, log in and quit: what `integrator check` reports."""
        conn = self._open()
        try:
            conn.noop()
        finally:
            self._quit(conn)
        s = self.settings
        return f"{s.host}:{s.port} ({s.security}{', authenticated' if s.username else ''})"

    def send(self, outgoing: Outgoing) -> None:
        if self._conn is None:
            self._conn = self._open()
        try:
            if outgoing.built is not None:  # an address that is not ASCII: smtplib negotiates SMTPUTF8 from it
                self._conn.send_message(outgoing.built, from_addr=outgoing.envelope_from, to_addrs=[outgoing.recipient])
            else:
                self._conn.sendmail(outgoing.envelope_from, [outgoing.recipient], outgoing.raw.replace(b"\n", b"\r\n"))
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            text = f"{code} {' '.join(reply.decode('utf-8', 'replace').split())}"
            if code >= 500:
                raise PermanentDeliveryError(f"recipient refused: {text}") from None
            self._drop()
            raise TransientDeliveryError(f"recipient deferred: {text}") from None
        except smtplib.SMTPSenderRefused as exc:
            # The envelope sender is the config's, not this mail's: no mail can go out.
            self._drop()
            raise BackendUnavailable(f"sender {outgoing.envelope_from} refused: {_smtp_reply(exc)}") from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise PermanentDeliveryError(f"message refused: {_smtp_reply(exc)}") from None
            self._drop()
            raise TransientDeliveryError(f"message deferred: {_smtp_reply(exc)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(f"server cannot take this message: {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:  # disconnects, resets, timeouts (TimeoutError)
            self._drop()
            raise TransientDeliveryError(f"connection lost: {type(exc).__name__}: {exc}") from None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._abandon(conn)

    @staticmethod
    def _quit(conn: smtplib.SMTP) -> None:
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            SmtpBackend._abandon(conn)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._quit(conn)


class FileBackend:
    """One .eml file per mail, named `<UTC time>-<mail id>-<kind>.eml` so a listing sorts by delivery."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._made = False
        """Whether the folder was made (or found) by this backend: a go-live writes hundreds of thousands of files,
        and each system call counts."""
        self._pid = os.getpid()
        """In the temporary file's name, so two delivering processes never write the same one."""

    @classmethod
    def from_config(cls, config: MailConfig) -> FileBackend:
        return cls(config.file.directory)

    def send(self, outgoing: Outgoing) -> None:
        try:
            if not self._made:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._made = True
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            stem = f"{stamp}-{outgoing.mail_id:08d}-{outgoing.kind}"
            temporary = self.directory / f".{stem}.{self._pid}.tmp"
            try:
                _write_new(temporary, outgoing.raw)
            except FileNotFoundError:  # the folder was removed during the delivery: make it again, once
                self.directory.mkdir(parents=True, exist_ok=True)
                _write_new(temporary, outgoing.raw)
            try:
                self._link_unique(temporary, stem)
            finally:
                temporary.unlink(missing_ok=True)
        except OSError as exc:
            raise BackendUnavailable(f"cannot write to mail folder {self.directory}: {exc.strerror or exc}") from None

    def _link_unique(self, temporary: Path, stem: str) -> Path:
        # A hard link appears complete or not at all, and never replaces an existing file.
        for n in range(1000):
            target = self.directory / (f"{stem}.eml" if n == 0 else f"{stem}-{n}.eml")
            try:
                os.link(temporary, target)
                return target
            except FileExistsError:
                continue
        raise FileExistsError(f"no free file name for {stem}")

    def close(self) -> None:
        pass


def _write_new(path: Path, data: bytes) -> None:
    """Write `data` to a new file (open, write, close: none of the buffered file object's extra system calls)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class ConsoleBackend:
    """Prints each message readably, headers decoded and the text part (to stderr, so `--json` stays clean)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    @classmethod
    def from_config(cls, config: MailConfig) -> ConsoleBackend:
        return cls()

    def send(self, outgoing: Outgoing) -> None:
        stream = self.stream or sys.stderr
        rule = "-" * 72
        message = outgoing.message
        stream.write(f"{rule}\nmail #{outgoing.mail_id} ({outgoing.kind})\n")
        for header in ("From", "Reply-To", "To", "Subject", "Date", "Message-ID"):
            if message[header]:
                stream.write(f"{header}: {message[header]}\n")
        body = message.get_body(preferencelist=("plain",))
        stream.write("\n" + (body.get_content() if body is not None else "") + f"\n{rule}\n")
        stream.flush()

    def close(self) -> None:
        pass


BACKENDS: dict[str, Callable[[MailConfig], MailBackend]] = {
    "smtp": SmtpBackend.from_config,
    "file": FileBackend.from_config,
    "console": ConsoleBackend.from_config,
}


def make_backend(config: MailConfig) -> MailBackend:
    """The backend `[mail] backend` names; an unknown name is a config error listing the valid ones."""
    try:
        factory = BACKENDS[config.backend]
    except KeyError:
        raise ConfigError(f"[mail] backend: unknown {config.backend!r}; valid: {', '.join(sorted(BACKENDS))}") from None
    return factory(config)
