"""A login whose local part is not ASCII (`żaneta@example.pl`, valid under SMTPUTF8, RFC 6531/6532): its mail is
built and delivered, to the file backend and to an SMTP server that offers SMTPUTF8; a server that does not offer
it fails that mail alone, saying why, instead of a template error retried until it fails."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from support.mailstore import FAST_RETRY, mail_config, mail_row, queue, seed_account, smtp_settings
from support.smtp import SmtpServer

from integrator.mail.delivery import deliver_pending
from integrator.store.db import open_store

pytest_plugins = ["support.mail_fixtures"]

LOGIN = "żaneta@example.pl"


@pytest.fixture(params=[True, False], ids=["smtputf8", "no-smtputf8"])
def server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    server = SmtpServer(smtputf8=request.param).start()
    yield server
    server.stop()


def test_file_backend_writes_the_mail_to_a_utf8_local_part(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_store(url)
    config = mail_config(tmp_path, url, backend="file", file={"directory": str(tmp_path / "mail")})
    mail_id = queue(engine, seed_account(engine, LOGIN, name="Żaneta Łęcka"))
    assert deliver_pending(engine, config).sent == 1
    assert mail_row(engine, mail_id)["status"] == "sent"
    engine.dispose()
    [eml] = (tmp_path / "mail").glob("*.eml")
    message = email.message_from_string(eml.read_bytes().decode("utf-8"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert f"<{LOGIN}>" in str(message["To"]) and "Żaneta Łęcka" in str(message["To"])
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and "/activate?token=" in text.get_content()


def test_smtp_delivers_it_where_the_server_offers_smtputf8_and_else_fails_it_alone(
    tmp_path: Path, server: SmtpServer
) -> None:
    """Offered SMTPUTF8, the server gets the mail with its UTF-8 address; not offered, that mail fails at once
    naming SMTPUTF8 (not as a template error), and a mail to an ASCII address in the same batch goes out."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_store(url)
    config = mail_config(tmp_path, url, smtp=smtp_settings(server.port))
    unicode_mail = queue(engine, seed_account(engine, LOGIN))
    plain_mail = queue(engine, seed_account(engine, "jan@example.pl"))
    report = deliver_pending(engine, config, retry=FAST_RETRY)
    assert mail_row(engine, plain_mail)["status"] == "sent"
    row = mail_row(engine, unicode_mail)
    if server.smtputf8:
        assert (report.sent, report.failed, row["status"]) == (2, 0, "sent")
        [received] = server.handler.to(LOGIN)
        assert LOGIN.encode("utf-8") in received.raw
    else:
        assert (report.sent, report.failed, row["status"]) == (1, 1, "failed")
        assert "SMTPUTF8" in row["last_error"] and "template" not in row["last_error"]
        assert server.handler.to(LOGIN) == []
    engine.dispose()
