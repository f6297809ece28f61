"""Mail: templates, credentials minted at delivery, and delivery of the outbox through a backend.

Entry points: `deliver_pending` (sync, daemon, `mail deliver`), `check_templates` / `check_mail` (`check`),
and `integrator.portal` for what the portal calls.
"""

from __future__ import annotations

from integrator.mail.delivery import DeliveryReport, RetrySettings, deliver_pending
from integrator.mail.outbox import MailInfo, list_mail, retry_mail
from integrator.mail.templates import check_templates

__all__ = [
    "DeliveryReport",
    "MailInfo",
    "RetrySettings",
    "check_templates",
    "deliver_pending",
    "list_mail",
    "retry_mail",
]
