"""Settings, read once at start-up from the environment and an optional TOML file.

Precedence: environment variable > config file (``FLUXER_CONFIG``) > mode default.
Production refuses to start with the development secrets, so a forgotten variable
cannot ship a guessable key.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

MODES = ("development", "test", "production")
DEV_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - the very value production rejects
ALWAYS_ALLOWED_ORIGINS = ("https://app.fluxer.app", "https://fluxer.app")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """The configuration cannot run safely; raised at start-up, never per request."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'fluxer.sqlite3'}"
    redis_url: str | None = None
    events_channel: str = "fluxer:events"  # the Redis pub/sub channel processes share events on
    secret_key: str = DEV_SECRET
    test_token: str | None = None
    cors_origins: tuple[str, ...] = ALWAYS_ALLOWED_ORIGINS
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    public_url: str = "http://127.0.0.1:8080"
    gateway_url: str = "ws://127.0.0.1:8080/gateway"
    gateway_heartbeat_ms: int = 41250  # HELLO's heartbeat_interval; 1.5 intervals without one closes with 4009
    gateway_resume_seconds: int = 180  # how long a dropped session waits to be resumed
    gateway_queue_limit: int = 2048  # frames queued for one slow client before it is closed with 4013
    gateway_replay_limit: int = 4096  # frames a session keeps for RESUME
    media_url: str = "http://127.0.0.1:8080/media"
    storage_dir: Path = PROJECT_ROOT / "var" / "media"  # uploaded files (emojis, stickers, icons, attachments)
    max_body_bytes: int = 1024 * 1024
    max_attachment_bytes: int = 25 * 1024 * 1024  # one file sent with a message
    max_attachments_total_bytes: int = 50 * 1024 * 1024  # all files of one message together
    media_url_ttl_seconds: int = 24 * 3600  # how long an attachment URL handed out keeps working
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "Fluxer <noreply@localhost>"
    # argon2id cost; tests lower the memory cost so the suite stays fast, the scheme stays the same.
    argon2_memory_kib: int = 65536
    argon2_time_cost: int = 3
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def test_harness_enabled(self) -> bool:
        return self.env in ("development", "test")

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(net, strict=False) for net in self.trusted_proxies)

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)


def _split(value: str | list | tuple) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    return tuple(item.strip() for item in value if item and item.strip())


def _load_file(path: str | None) -> dict:
    if not path:
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    file_values = _load_file(environ.get("FLUXER_CONFIG"))

    def pick(env_name: str, *file_names: str, default=None):
        if environ.get(env_name) not in (None, ""):
            return environ[env_name]
        for name in file_names:
            if name in file_values:
                return file_values[name]
        return default

    env = str(pick("FLUXER_ENV", "env", "nodeEnv", default="development")).lower()
    if env not in MODES:
        raise ConfigError(f"FLUXER_ENV must be one of {', '.join(MODES)}, not {env!r}")

    defaults = Settings()
    settings = Settings(
        env=env,
        database_url=pick("DATABASE_URL", "database_url", default=defaults.database_url),
        redis_url=pick("REDIS_URL", "redis_url") or None,
        events_channel=pick("EVENTS_CHANNEL", "events_channel", default=defaults.events_channel),
        secret_key=pick("FLUXER_SECRET_KEY", "secret_key", default=DEV_SECRET),
        test_token=pick("FLUXER_TEST_TOKEN", "test_token") or None,
        cors_origins=ALWAYS_ALLOWED_ORIGINS
        + tuple(o for o in _split(pick("CORS_ORIGINS", "cors_origins", "corsOrigins", default=""))
                if o not in ALWAYS_ALLOWED_ORIGINS),
        trusted_proxies=_split(pick("TRUSTED_PROXIES", "trusted_proxies", default=",".join(defaults.trusted_proxies))),
        public_url=pick("PUBLIC_URL", "public_url", default=defaults.public_url).rstrip("/"),
        gateway_url=pick("GATEWAY_URL", "gateway_url", default=defaults.gateway_url),
        gateway_heartbeat_ms=int(pick("GATEWAY_HEARTBEAT_MS", "gateway_heartbeat_ms",
                                      default=defaults.gateway_heartbeat_ms)),
        gateway_resume_seconds=int(pick("GATEWAY_RESUME_SECONDS", "gateway_resume_seconds",
                                        default=defaults.gateway_resume_seconds)),
        gateway_queue_limit=int(pick("GATEWAY_QUEUE_LIMIT", "gateway_queue_limit", default=defaults.gateway_queue_limit)),
        gateway_replay_limit=int(pick("GATEWAY_REPLAY_LIMIT", "gateway_replay_limit",
                                      default=defaults.gateway_replay_limit)),
        media_url=pick("MEDIA_URL", "media_url", default=defaults.media_url),
        storage_dir=Path(pick("STORAGE_DIR", "storage_dir", default=defaults.storage_dir)),
        max_body_bytes=int(pick("MAX_BODY_BYTES", "max_body_bytes", default=defaults.max_body_bytes)),
        max_attachment_bytes=int(pick("MAX_ATTACHMENT_BYTES", "max_attachment_bytes",
                                      default=defaults.max_attachment_bytes)),
        max_attachments_total_bytes=int(pick("MAX_ATTACHMENTS_TOTAL_BYTES", "max_attachments_total_bytes",
                                             default=defaults.max_attachments_total_bytes)),
        media_url_ttl_seconds=int(pick("MEDIA_URL_TTL_SECONDS", "media_url_ttl_seconds",
                                       default=defaults.media_url_ttl_seconds)),
        smtp_host=pick("SMTP_HOST", "smtp_host") or None,
        smtp_port=int(pick("SMTP_PORT", "smtp_port", default=defaults.smtp_port)),
        smtp_user=pick("SMTP_USER", "smtp_user") or None,
        smtp_password=pick("SMTP_PASSWORD", "smtp_password") or None,
        mail_from=pick("MAIL_FROM", "mail_from", default=defaults.mail_from),
        argon2_memory_kib=int(pick("ARGON2_MEMORY_KIB", "argon2_memory_kib",
                                   default=8192 if env == "test" else defaults.argon2_memory_kib)),
        argon2_time_cost=int(pick("ARGON2_TIME_COST", "argon2_time_cost", default=defaults.argon2_time_cost)),
        extra=file_values,
    )
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    try:
        settings.trusted_networks  # noqa: B018 - parsing is the check
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES: {exc}") from exc
    if settings.is_production:
        if settings.secret_key == DEV_SECRET or len(settings.secret_key) < 32:
            raise ConfigError("production needs FLUXER_SECRET_KEY: a random value of at least 32 characters")
        if settings.database_url.startswith("sqlite") and ":memory:" in settings.database_url:
            raise ConfigError("production cannot run on an in-memory database")
    if not 60 <= settings.media_url_ttl_seconds <= 366 * 24 * 3600:
        raise ConfigError("MEDIA_URL_TTL_SECONDS must be between 60 and 31622400 (a year)")
    if settings.gateway_heartbeat_ms < 100 or settings.gateway_resume_seconds < 1 \
            or settings.gateway_queue_limit < 16 or settings.gateway_replay_limit < 16:
        raise ConfigError("gateway settings: heartbeat >= 100 ms, resume >= 1 s, queue and replay limits >= 16 frames")
    if settings.argon2_memory_kib < 8192:
        raise ConfigError("ARGON2_MEMORY_KIB below 8192 is not a memory-hard setting")
