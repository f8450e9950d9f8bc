"""Discovery, health and telemetry of this server."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.errors import APIError

API_CODE_VERSION = 1


def well_known(settings) -> dict:
    base = settings.public_url
    return {
        "api_code_version": API_CODE_VERSION,
        "endpoints": {
            "api": f"{base}/v1", "api_client": f"{base}/v1", "api_public": f"{base}/v1",
            "gateway": settings.gateway_url, "media": settings.media_url, "static_cdn": f"{base}/static",
            "marketing": base, "admin": f"{base}/admin", "invite": f"{base}/invite", "gift": f"{base}/gift",
            "webapp": base,
        },
        "captcha": {"provider": "none", "hcaptcha_site_key": None, "turnstile_site_key": None},
        "features": {"voice_enabled": False, "stripe_enabled": False, "self_hosted": True,
                     "presigned_attachment_uploads": False, "emails_enabled": bool(settings.smtp_host)},
        "gif": {"provider": "none", "display_name": "", "attribution_required": False},
        "sso": {"enabled": False, "enforced": False, "display_name": None, "redirect_uri": ""},
        "registration": {"mode": "open", "admin_registration_urls_enabled": False},
        "community": {"single_community": False, "single_community_guild_id": None, "direct_messages_disabled": False},
        "services": {"gif_enabled": False, "youtube_enabled": False, "bluesky_enabled": False},
    }


def gateway_bot(settings) -> dict:
    return {"url": settings.gateway_url, "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 86_400_000, "max_concurrency": 1}}


def telemetry() -> dict:
    return {"telemetry_enabled": True, "service": "fluxer_api",
            "timestamp": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")}


def check_database(db) -> None:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        raise APIError(503, "SERVICE_UNAVAILABLE", "Database unavailable") from None
