"""Delivery through a real SMTP server (aiosmtpd on loopback): headers, parts, retries, failures, exactly once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.mailstore import (
    FAST_RETRY,
    mail_config,
    mail_row,
    queue,
    seed_account,
    smtp_settings,
    token_in,
)
from support.smtp import SmtpServer

from integrator.config import Config
from integrator.errors import LockBusy
from integrator.mail.delivery import DeliveryReport, deliver_pending
from integrator.mail.outbox import list_mail, retry_mail
from integrator.portal import Outcome, activate
from integrator.store.lock import SyncLock

pytest_plugins = ["support.mail_fixtures"]


def _config(tmp_path: Path, sqlite_url: str, port: int, **mail: object) -> Config:
    return mail_config(tmp_path, sqlite_url, smtp=smtp_settings(port), **mail)


def _deliver(engine: Engine, config: Config, **kwargs: object) -> DeliveryReport:
    return deliver_pending(engine, config, retry=FAST_RETRY, **kwargs)  # type: ignore[arg-type]


def test_activation_arrives_with_headers_both_parts_and_polish_intact(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """The received message decodes to the exact Polish subject, names and body, in a text and an HTML part."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    account = seed_account(engine, "jan@sklep-zolc.pl", name="Sklep „Żółć” Jan Łęcki", sales_rep="Łukasz Wąsowski")
    mail_id = queue(engine, account)
    report = _deliver(engine, config)
    assert (report.sent, report.failed, report.pending_left) == (1, 0, 0)
    [received] = smtp.handler.received
    message = received.message
    assert received.mail_from == "no-reply@hurtownia.example.pl" and received.rcpt_tos == ("jan@sklep-zolc.pl",)
    assert message["Subject"] == "Aktywacja konta w platformie zamówień B2B"
    assert message["From"].addresses[0].display_name == "Hurtownia Łódź B2B"
    assert message["To"].addresses[0].display_name == "Sklep „Żółć” Jan Łęcki"
    assert message["To"].addresses[0].addr_spec == "jan@sklep-zolc.pl"
    assert message["Reply-To"].addresses[0].display_name == "Biuro Obsługi"
    assert message["Date"] is not None and message["Message-ID"].strip().startswith(f"<outbox-{mail_id}.")
    assert message.get_content_type() == "multipart/alternative"
    text, html = received.text, received.html
    assert "dla Sklep „Żółć” Jan Łęcki założyliśmy konto" in text
    assert "Łukasz Wąsowski <l.wasowski@hurtownia.example.pl>" in text
    assert "Sklep „Żółć” Jan Łęcki" in html and "Aktywuj konto" in html
    assert "https://b2b.hurtownia.example.pl/activate?token=" in text
    assert token_in(text) == token_in(html)
    row = mail_row(engine, mail_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, None) and row["sent_at"]


def test_english_locale_and_account_fallback(tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str) -> None:
    """A mail without its own locale uses the account's; the English template is chosen for `en`."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    queue(engine, seed_account(engine, "buyer@example.com", locale="en_GB"))
    _deliver(engine, config)
    [received] = smtp.handler.received
    assert received.message["Subject"] == "Activate your B2B ordering account"
    assert received.message["Content-Language"] == "en"


def test_one_connection_serves_the_whole_batch(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Five mails go out over one SMTP session."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    for n in range(5):
        queue(engine, seed_account(engine, f"k{n}@example.pl"))
    assert _deliver(engine, config).sent == 5
    assert len(smtp.handler.received) == 5 and smtp.handler.sessions == 1


def test_550_for_one_recipient_fails_only_that_mail(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """A permanent refusal fails that mail at once; the batch goes on and the others are sent."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    ids = [queue(engine, seed_account(engine, f"k{n}@example.pl")) for n in range(3)]
    smtp.handler.refuse("k1@example.pl", "550 5.1.1 No such user here")
    report = _deliver(engine, config)
    assert (report.sent, report.failed, report.failed_ids, report.pending_left) == (2, 1, (ids[1],), 0)
    assert [mail_row(engine, i)["status"] for i in ids] == ["sent", "failed", "sent"]
    assert "550" in mail_row(engine, ids[1])["last_error"]
    assert sorted(r.rcpt_tos[0] for r in smtp.handler.received) == ["k0@example.pl", "k2@example.pl"]


def test_transient_refusal_is_retried_within_the_batch(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """A 421 (which also drops the connection) is retried at once by tenacity and the mail goes out once."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    mail_id = queue(engine, seed_account(engine, "k@example.pl"))
    smtp.handler.defer("k@example.pl", "421 4.7.0 Too busy, closing", times=1)
    report = _deliver(engine, config)
    assert (report.sent, report.retry_later) == (1, 0)
    assert len(smtp.handler.to("k@example.pl")) == 1
    assert mail_row(engine, mail_id)["attempts"] == 1


def test_server_down_leaves_mail_pending_then_each_goes_out_exactly_once(
    tmp_path: Path, engine: Engine, sqlite_url: str
) -> None:
    """With the server down nothing is lost or charged; the next delivery sends every mail exactly once."""
    server = SmtpServer()  # not started: connection refused
    config = _config(tmp_path, sqlite_url, server.port)
    ids = [queue(engine, seed_account(engine, f"k{n}@example.pl")) for n in range(3)]
    down = _deliver(engine, config)
    assert (down.sent, down.failed, down.pending_left) == (0, 0, 3)
    assert down.backend_error and "cannot reach SMTP server" in down.backend_error
    assert all(mail_row(engine, i)["status"] == "pending" for i in ids)
    server.start()
    try:
        up = _deliver(engine, config)
        again = _deliver(engine, config)
    finally:
        server.stop()
    assert (up.sent, up.pending_left, again.sent) == (3, 0, 0)
    for n in range(3):
        assert len(server.handler.to(f"k{n}@example.pl")) == 1
    assert all(mail_row(engine, i)["status"] == "sent" for i in ids)


def test_server_stopping_mid_batch_loses_nothing(tmp_path: Path, engine: Engine, sqlite_url: str) -> None:
    """Mails not yet handed over when the server goes away stay pending and are sent later, once."""
    server = SmtpServer().start()
    config = _config(tmp_path, sqlite_url, server.port)
    ids = [queue(engine, seed_account(engine, f"k{n}@example.pl")) for n in range(2)]
    assert _deliver(engine, config, limit=1).sent == 1
    server.stop()
    assert _deliver(engine, config).pending_left == 1
    server.start()
    try:
        assert _deliver(engine, config).sent == 1
    finally:
        server.stop()
    assert [len(server.handler.to(f"k{n}@example.pl")) for n in range(2)] == [1, 1]
    assert all(mail_row(engine, i)["status"] == "sent" for i in ids)


def test_repeated_4xx_defers_with_backoff_then_fails_after_max_attempts(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """A mail deferred by the server is retried later with backoff; after max_attempts it is failed and listed."""
    config = _config(tmp_path, sqlite_url, smtp.port, max_attempts=3)
    mail_id = queue(engine, seed_account(engine, "slow@example.pl"))
    smtp.handler.defer("slow@example.pl", "451 4.3.0 Greylisted", times=100)
    first = _deliver(engine, config)
    row = mail_row(engine, mail_id)
    assert (first.retry_later, row["status"], row["attempts"]) == (1, "pending", 1)
    assert row["next_attempt_at"] is not None and "451" in row["last_error"]
    assert _deliver(engine, config).retry_later == 0  # not due yet: the backoff is respected
    assert _deliver(engine, config, ignore_backoff=True).retry_later == 1
    last = _deliver(engine, config, ignore_backoff=True)
    assert (last.failed, last.failed_ids, last.pending_left) == (1, (mail_id,), 0)
    assert [m.id for m in list_mail(engine, statuses=("failed",))] == [mail_id]
    smtp.handler.clear()
    assert retry_mail(engine, mail_id).status == "pending"
    assert _deliver(engine, config).sent == 1
    assert len(smtp.handler.to("slow@example.pl")) == 1


def test_a_deferral_is_retried_within_the_batch_until_the_tries_run_out(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """The first try goes straight to the backend; a transient failure still gets the in-batch retries: deferred
    as often as there are retries, the mail goes out in the same delivery; deferred once more, it waits."""
    from integrator.mail.delivery import RetrySettings

    config = _config(tmp_path, sqlite_url, smtp.port)
    three_tries = RetrySettings(attempts=3, wait_initial=0.01, wait_max=0.02)
    sent_id = queue(engine, seed_account(engine, "twice@example.pl"))
    smtp.handler.defer("twice@example.pl", "451 4.3.0 Greylisted", times=2)
    assert deliver_pending(engine, config, retry=three_tries).sent == 1
    assert (mail_row(engine, sent_id)["status"], len(smtp.handler.to("twice@example.pl"))) == ("sent", 1)
    later_id = queue(engine, seed_account(engine, "thrice@example.pl"))
    smtp.handler.defer("thrice@example.pl", "451 4.3.0 Greylisted", times=3)
    report = deliver_pending(engine, config, retry=three_tries)
    row = mail_row(engine, later_id)
    assert (report.sent, report.retry_later, row["status"], row["attempts"]) == (0, 1, "pending", 1)
    assert "451" in row["last_error"] and not smtp.handler.to("thrice@example.pl")


def test_a_sent_mail_is_never_sent_again(tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str) -> None:
    """Neither another delivery nor `retry` sends a mail whose delivery was recorded."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    mail_id = queue(engine, seed_account(engine, "k@example.pl"))
    _deliver(engine, config)
    _deliver(engine, config, ignore_backoff=True)
    with pytest.raises(LookupError, match="never sent again"):
        retry_mail(engine, mail_id)
    assert len(smtp.handler.received) == 1


def test_mail_for_a_removed_account_is_cancelled_except_the_removal_notice(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """No activation reaches a closed account; its `account_removed` notice still goes out."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    account = seed_account(engine, "gone@example.pl", status="removed")
    activation, notice = queue(engine, account), queue(engine, account, "account_removed")
    report = _deliver(engine, config)
    assert (report.sent, report.cancelled) == (1, 1)
    row = mail_row(engine, activation)
    assert (row["status"], row["last_error"]) == ("cancelled", "account removed")
    assert mail_row(engine, notice)["status"] == "sent"
    assert smtp.handler.received[0].message["Subject"] == "Zamknięcie konta w platformie zamówień B2B"


def test_stale_and_superseded_mails_are_cancelled(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """A mail to a login the account no longer has, or an older duplicate activation, is not sent."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    account = seed_account(engine, "new@example.pl")
    stale = queue(engine, account, recipient="old@example.pl")
    older, newer = queue(engine, account), queue(engine, account)
    changed = queue(engine, account, "login_changed", context={"old_login": "old@example.pl"})
    report = _deliver(engine, config)
    assert (report.sent, report.cancelled) == (2, 2)
    assert "login changed" in mail_row(engine, stale)["last_error"]
    assert mail_row(engine, older)["last_error"] == f"superseded by mail #{newer}"
    assert mail_row(engine, newer)["status"] == mail_row(engine, changed)["status"] == "sent"
    login_mail = smtp.handler.received[-1]
    assert "poprzedni login: old@example.pl" in login_mail.text


def test_activation_for_an_already_active_account_is_cancelled(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Once the customer activated, a leftover activation mail is not sent (its secret would be useless)."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    mail_id = queue(engine, seed_account(engine, "k@example.pl", status="active"))
    assert _deliver(engine, config).cancelled == 1
    assert mail_row(engine, mail_id)["last_error"] == "account already activated"


def test_second_delivery_at_the_same_time_is_refused(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Two deliveries never work the outbox at once (which could send a mail twice)."""
    config = _config(tmp_path, sqlite_url, smtp.port)
    queue(engine, seed_account(engine, "k@example.pl"))
    with SyncLock(engine, name="mail"), pytest.raises(LockBusy, match="mail delivery"):
        _deliver(engine, config)
    assert _deliver(engine, config).sent == 1


def test_starttls_with_login(
    tmp_path: Path,
    engine: Engine,
    sqlite_url: str,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """security = starttls upgrades the session, verifies the certificate and logs in before sending."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    server = SmtpServer(security="starttls", certificate=certificate, credentials=("b2b", "Haslo-SMTP")).start()
    try:
        settings = smtp_settings(server.port, security="starttls", username="b2b", password="Haslo-SMTP")
        config = mail_config(tmp_path, sqlite_url, smtp=settings)
        queue(engine, seed_account(engine, "k@example.pl"))
        assert _deliver(engine, config).sent == 1
    finally:
        server.stop()
    assert len(server.handler.received) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(
    tmp_path: Path, engine: Engine, sqlite_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """security = tls speaks TLS from the first byte (port 465 style)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    server = SmtpServer(security="tls", certificate=certificate, credentials=("b2b", "secret")).start()
    try:
        settings = smtp_settings(server.port, security="tls", username="b2b", password="secret")
        queue(engine, seed_account(engine, "k@example.pl"))
        assert _deliver(engine, mail_config(tmp_path, sqlite_url, smtp=settings)).sent == 1
    finally:
        server.stop()
    assert len(server.handler.received) == 1


def test_untrusted_certificate_or_wrong_login_keeps_mail_pending(
    tmp_path: Path, engine: Engine, sqlite_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A certificate we cannot verify, or refused credentials, leave the mail pending with the reason."""
    server = SmtpServer(security="starttls", certificate=certificate, credentials=("b2b", "right")).start()
    try:
        mail_id = queue(engine, seed_account(engine, "k@example.pl"))
        settings = smtp_settings(server.port, security="starttls", username="b2b", password="right")
        untrusted = _deliver(engine, mail_config(tmp_path, sqlite_url, smtp=settings))
        assert untrusted.pending_left == 1 and "CERTIFICATE_VERIFY_FAILED" in (untrusted.backend_error or "")
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        settings["password"] = "wrong"
        refused = _deliver(engine, mail_config(tmp_path, sqlite_url, smtp=settings))
        assert refused.pending_left == 1 and "535" in (refused.backend_error or "")
        assert "wrong" not in (refused.backend_error or "")
        settings["password"] = "hasło"
        non_ascii = _deliver(engine, mail_config(tmp_path, sqlite_url, smtp=settings))
        assert "must be ASCII" in (non_ascii.backend_error or "") and "hasło" not in (non_ascii.backend_error or "")
        settings["password"] = "wrong"
        _deliver(engine, mail_config(tmp_path, sqlite_url, smtp=settings))
    finally:
        server.stop()
    row = mail_row(engine, mail_id)
    assert (row["status"], row["attempts"]) == ("pending", 0) and "535" in row["last_error"]


def test_file_backend_writes_one_sortable_eml_per_mail(tmp_path: Path, engine: Engine, sqlite_url: str) -> None:
    """Each mail becomes its own .eml file; names sort by delivery and an existing file is never overwritten."""
    folder = tmp_path / "mail"
    config = mail_config(tmp_path, sqlite_url, backend="file", file={"directory": str(folder)})
    first = queue(engine, seed_account(engine, "a@example.pl"))
    second = queue(engine, seed_account(engine, "b@example.pl"))
    assert _deliver(engine, config).sent == 2
    names = sorted(p.name for p in folder.iterdir())
    assert [n.endswith(f"-{i:08d}-activation.eml") for n, i in zip(names, (first, second), strict=True)] == [True] * 2
    from integrator.mail.backends import FileBackend

    target = folder / names[0]
    before = target.read_bytes()
    backend = FileBackend(folder)
    assert backend._link_unique(target, target.name.removesuffix(".eml")).name.endswith("-1.eml")
    assert target.read_bytes() == before and not list(folder.glob(".*.tmp"))


def test_file_backend_makes_its_folder_again_when_it_is_removed_mid_delivery(tmp_path: Path) -> None:
    """The folder is made once per delivery, not checked per mail; removed meanwhile, it is made again and the
    mail is written, not lost."""
    from integrator.mail.backends import FileBackend
    from integrator.mail.message import Outgoing

    folder = tmp_path / "mail" / "out"
    backend = FileBackend(folder)
    mail = {"envelope_from": "b2b@example.pl", "recipient": "k@example.pl", "kind": "activation"}
    backend.send(Outgoing(mail_id=1, raw=b"Subject: one\n\n1\n", **mail))
    shutil.rmtree(tmp_path / "mail")
    backend.send(Outgoing(mail_id=2, raw=b"Subject: two\n\n2\n", **mail))
    assert [p.read_bytes() for p in folder.glob("*-00000002-activation.eml")] == [b"Subject: two\n\n2\n"]
    assert not list(folder.glob(".*.tmp"))


def test_console_backend_prints_the_decoded_mail(tmp_path: Path, engine: Engine, sqlite_url: str) -> None:
    """The console backend shows headers and the text part readably (to stderr)."""
    import io

    from integrator.mail.backends import ConsoleBackend

    stream = io.StringIO()
    config = mail_config(tmp_path, sqlite_url, backend="console")
    queue(engine, seed_account(engine, "k@example.pl"))
    deliver_pending(engine, config, backend=ConsoleBackend(stream), retry=FAST_RETRY)
    out = stream.getvalue()
    assert "Subject: Aktywacja konta w platformie zamówień B2B" in out and "Dzień dobry" in out


def test_delivery_and_activation_on_every_store(tmp_path: Path, store_url: str) -> None:
    """Smoke on SQLite, PostgreSQL and MariaDB: deliver to files, then the link activates the account."""
    from integrator.store.db import open_store

    engine = open_store(store_url)
    try:
        folder = tmp_path / "mail"
        config = mail_config(tmp_path, store_url, backend="file", file={"directory": str(folder)})
        account = seed_account(engine, "k@example.pl")
        queue(engine, account)
        assert _deliver(engine, config).sent == 1
        [eml] = folder.glob("*.eml")
        import email
        import email.policy

        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        result = activate(engine, token_in(body.get_content()), "Nowe-Hasło-123")
        assert (result.outcome, result.account_id) == (Outcome.OK, account)
    finally:
        engine.dispose()


def test_a_mail_the_backend_chokes_on_does_not_block_the_others(
    tmp_path: Path, engine: Engine, smtp: SmtpServer, sqlite_url: str
) -> None:
    """An unexpected error for one mail counts an attempt on that mail only; the batch goes on."""
    from integrator.mail.backends import SmtpBackend

    class Choking(SmtpBackend):
        def send(self, outgoing):  # type: ignore[no-untyped-def]
            if outgoing.recipient == "bad@example.pl":
                raise ValueError("cannot serialise this one")
            super().send(outgoing)

    config = _config(tmp_path, sqlite_url, smtp.port)
    bad, good = (
        queue(engine, seed_account(engine, "bad@example.pl")),
        queue(engine, seed_account(engine, "ok@example.pl")),
    )
    report = deliver_pending(engine, config, backend=Choking(config.mail.smtp), retry=FAST_RETRY)
    assert (report.sent, report.retry_later) == (1, 1)
    assert mail_row(engine, good)["status"] == "sent"
    row = mail_row(engine, bad)
    assert (row["status"], row["attempts"]) == ("pending", 1) and "ValueError" in row["last_error"]
