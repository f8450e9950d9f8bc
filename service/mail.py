"""One way out for email: SMTP when configured, and always a row in the outbox.

The outbox is a table, so every server process (and the test harness) sees the same mail.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from service.models import OutboxEmail

log = logging.getLogger("fluxer.mail")


class Mailer:
    def __init__(self, settings):
        self.settings = settings

    def send(self, session, *, to: str, type: str, subject: str, body: str, metadata: dict) -> None:
        """Records the email in ``session``'s transaction; SMTP delivery happens right away."""
        # In production the outbox is an audit trail only: links and tokens leave by SMTP alone.
        kept = ({}, "") if self.settings.is_production else (metadata, body)
        session.add(OutboxEmail(recipient=to, type=type, metadata_json=kept[0], body=kept[1]))
        if not self.settings.smtp_host:
            log.info("email queued to outbox", extra={"to": to, "type": type})
            return
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            with smtplib.SMTP(self.settings.smtp_host, self.settings.smtp_port, timeout=10) as smtp:
                smtp.starttls()
                if self.settings.smtp_user:
                    smtp.login(self.settings.smtp_user, self.settings.smtp_password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            # The outbox row stays; losing one email must not fail the request that caused it.
            log.error("smtp delivery failed", extra={"to": to, "type": type, "error": str(exc)})
