"""What one server process shares between requests: settings, database, id generator, hashing, mail."""

from __future__ import annotations

from dataclasses import dataclass

import flask

from service.config import Settings
from service.crypto import PasswordHashing
from service.db import Database
from service.events import EventBus
from service.mail import Mailer
from service.net import client_address
from service.presence import MemoryPresence, RedisPresence
from service.snowflake import SnowflakeGenerator
from service.storage import Storage

EXTENSION_KEY = "fluxer"


@dataclass
class Runtime:
    settings: Settings
    db: Database
    ids: SnowflakeGenerator
    passwords: PasswordHashing
    mailer: Mailer
    events: EventBus
    storage: Storage
    presence: MemoryPresence | RedisPresence

    def new_id(self) -> int:
        return self.ids.next_id()


def current() -> Runtime:
    """The runtime of the Flask app serving this request."""
    return flask.current_app.extensions[EXTENSION_KEY]


@dataclass(frozen=True)
class Client:
    """Who is on the other end of this request: address and a coarse device description."""

    ip: str
    platform: str | None = None
    os: str | None = None
    browser: str | None = None


def client_ip() -> str:
    """The caller's address for this request (see service.net for the proxy rules)."""
    request = flask.request
    return client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), current().settings)


def client() -> Client:
    """The caller, with what the session list shows about the device (from the User-Agent)."""
    agent = flask.request.headers.get("User-Agent", "")
    browser = next((b for b in ("Firefox", "Edg", "Chrome", "Safari") if b in agent), None)
    os_name = next((o for o in ("Windows", "Mac OS", "Android", "iPhone", "Linux") if o in agent), None)
    return Client(ip=client_ip(), platform="web" if browser else None, os=os_name,
                  browser={"Edg": "Edge"}.get(browser, browser))


def audit_reason() -> str | None:
    """The request's ``X-Audit-Log-Reason``, decoded, for the guild audit log."""
    from service.audit import reason_from_header

    return reason_from_header(flask.request.headers.get("X-Audit-Log-Reason"))
