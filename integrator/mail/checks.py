"""What `integrator check` asks of mail: do the templates render, and can the backend take mail?"""

from __future__ import annotations

import tempfile

from integrator.config import Config
from integrator.errors import IntegratorError
from integrator.mail.backends import SmtpBackend
from integrator.mail.templates import check_templates

__all__ = ["check_mail"]


def _backend_detail(config: Config) -> str:
    """One line on the backend; raises `IntegratorError` when it cannot take mail."""
    mail = config.mail
    if mail.backend == "smtp":
        return "smtp " + SmtpBackend(mail.smtp).probe()
    if mail.backend == "file":
        directory = mail.file.directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".check-", delete=True):
                pass
        except OSError as exc:
            raise IntegratorError(f"mail folder {directory} is not writable: {exc.strerror or exc}") from None
        return f"file: .eml files in {directory}"
    return "console: mail is printed to stderr"


def check_mail(config: Config) -> list[tuple[str, bool, str]]:
    """`(check name, ok, detail)` rows: every template rendered in both locales and modes, and the backend."""
    problems = check_templates(config)
    where = f"overrides in {config.mail.templates_dir}" if config.mail.templates_dir else "shipped templates"
    rows = [("mail templates", not problems, "; ".join(problems) if problems else f"all render ({where})")]
    try:
        rows.append(("mail backend", True, _backend_detail(config)))
    except IntegratorError as exc:
        rows.append(("mail backend", False, str(exc)))
    return rows
