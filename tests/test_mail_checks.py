"""What `integrator check` reports about mail: templates and a backend that can (or cannot) take mail."""

from __future__ import annotations

from pathlib import Path

from support.mailstore import mail_config, smtp_settings
from support.smtp import SmtpServer

from integrator.mail.checks import check_mail

pytest_plugins = ["support.mail_fixtures"]


def test_check_mail_passes_with_shipped_templates_and_a_live_smtp_server(
    tmp_path: Path, sqlite_url: str, smtp: SmtpServer
) -> None:
    """Every template renders and the SMTP server answers a session (EHLO … NOOP … QUIT)."""
    config = mail_config(tmp_path, sqlite_url, smtp=smtp_settings(smtp.port))
    results = {name: (ok, detail) for name, ok, detail in check_mail(config)}
    assert results["mail templates"][0] and results["mail backend"] == (True, f"smtp 127.0.0.1:{smtp.port} (none)")
    assert smtp.handler.received == []  # probing sends nothing


def test_check_mail_reports_a_down_server_and_a_broken_template(tmp_path: Path, sqlite_url: str) -> None:
    """A broken override and an unreachable SMTP server are both reported, with their details."""
    overrides = tmp_path / "overrides" / "en"
    overrides.mkdir(parents=True)
    (overrides / "login_changed.txt.j2").write_text("{{ old_login | nosuchfilter }}", encoding="utf-8")
    config = mail_config(
        tmp_path, sqlite_url, smtp=smtp_settings(SmtpServer().port), templates_dir=str(tmp_path / "overrides")
    )
    results = {name: (ok, detail) for name, ok, detail in check_mail(config)}
    assert results["mail templates"][0] is False and "en/login_changed" in results["mail templates"][1]
    assert results["mail backend"][0] is False and "cannot reach SMTP server" in results["mail backend"][1]


def test_check_mail_reports_an_unwritable_mail_folder(tmp_path: Path, sqlite_url: str) -> None:
    """The file backend's folder must be creatable and writable."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    config = mail_config(tmp_path, sqlite_url, backend="file", file={"directory": str(blocker / "mail")})
    results = {name: (ok, detail) for name, ok, detail in check_mail(config)}
    assert results["mail backend"][0] is False and "not writable" in results["mail backend"][1]
