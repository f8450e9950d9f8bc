"""Shared fixtures. The suite runs on SQLite by default; DATABASE_URL (PostgreSQL) and
REDIS_URL switch storage and rate-limit counters to those servers, as in production."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from service.app import create_app
from service.config import load_settings
from service.db import make_engine, migrate
from service.models import Base

PASSWORD = "correct horse battery staple"


def _fresh_database(tmp_path_factory) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as connection:  # a clean schema, then the real migrations
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = _fresh_database(tmp_path_factory)
    migrate(url)
    return url


def make_settings(database_url: str, **environ):
    # Each server the suite builds gets its own events channel: with REDIS_URL set, one test's
    # servers must not deliver events to another's recorders. Servers built from one settings
    # object share it, as a deployment's workers do.
    base = {"FLUXER_ENV": "test", "DATABASE_URL": database_url, "EVENTS_CHANNEL": f"fluxer:events:{uuid.uuid4().hex}"}
    if os.environ.get("REDIS_URL"):
        base["REDIS_URL"] = os.environ["REDIS_URL"]
    base.update(environ)
    return load_settings(base)


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    # Uploaded files (emojis, stickers) go to a throwaway directory, not the project's var/.
    return create_app(make_settings(database_url, STORAGE_DIR=str(tmp_path_factory.mktemp("media"))))


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def _empty_tables(request):
    yield
    if "app" not in request.fixturenames:
        return
    db = request.getfixturevalue("app").runtime.db
    with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "id_nodes":
                connection.execute(table.delete())


def unique_ip() -> str:
    """A fresh client address, so each test starts with its own rate-limit buckets."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


class Account:
    def __init__(self, client, email: str, token: str, user_id: str, ip: str):
        self.client, self.email, self.token, self.user_id, self.ip = client, email, token, user_id, ip

    @property
    def auth(self) -> dict:
        return {"Authorization": self.token, "X-Forwarded-For": self.ip}


@pytest.fixture
def register(client):
    """register(**fields) -> Account: a person with a session, registered from a fresh address."""

    def _register(email: str | None = None, ip: str | None = None, **fields) -> Account:
        email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
        ip = ip or unique_ip()
        body = {"email": email, "password": PASSWORD, "global_name": "Test User", "consent": True, **fields}
        response = client.post("/v1/auth/register", json=body, headers={"X-Forwarded-For": ip})
        assert response.status_code == 200, response.text
        data = response.json()
        return Account(client, email, data["token"], data["user_id"], ip)

    return _register


@pytest.fixture
def published(app):
    """Every gateway event published while the test runs, in order."""
    seen = []
    unsubscribe = app.runtime.events.subscribe(seen.append)
    yield seen
    unsubscribe()


@pytest.fixture
def make_guild(client):
    """make_guild(owner, name=...) -> the created guild's JSON (roles and channels included)."""

    def _make_guild(owner: Account, name: str = "Test Guild") -> dict:
        response = client.post("/v1/guilds", json={"name": name}, headers=owner.auth)
        assert response.status_code == 200, response.text
        return response.json()

    return _make_guild


@pytest.fixture
def add_member(app):
    """add_member(account, guild): makes ``account`` a member directly, without going through an invite."""
    from service import members
    from service.models import Guild, User

    def _add_member(account: Account, guild: dict) -> None:
        rt = app.runtime
        session = rt.db.session
        try:
            members.add(rt, session, session.get(Guild, int(guild["id"])), session.get(User, int(account.user_id)))
            session.commit()
        finally:
            rt.db.remove()

    return _add_member


def run_at_once(app, *calls):
    """The shape of a race between requests: each call gets the session of a thread of its own, and
    all start at the same moment. Answers (results in call order, the exceptions raised)."""
    rt = app.runtime
    start = threading.Barrier(len(calls), timeout=30)
    results, errors = [None] * len(calls), []

    def run(index, call):
        try:
            start.wait()
            results[index] = call(rt.db.session)
        except Exception as exc:  # the test asserts on them
            errors.append(exc)
        finally:
            rt.db.remove()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, errors


@pytest.fixture(scope="session")
def gateway_server(app):
    """The suite's app served by a real uvicorn (WebSockets need one); HTTP may still use ``client``."""
    from tests.gateway import EmbeddedServer
    with EmbeddedServer(app) as server:
        yield server


@pytest.fixture
def connect():
    """connect(server, query=..., client=GatewayClient): a gateway connection, closed after the test."""
    from tests.gateway import DEFAULT_QUERY, GatewayClient
    opened = []

    def _connect(server, query: str = DEFAULT_QUERY, client=GatewayClient):
        connection = client(server.gateway_url, query)
        opened.append(connection)
        return connection

    yield _connect
    for connection in opened:
        connection.close()


@pytest.fixture
def gateway(connect, gateway_server):
    """gateway(query=...): a connection to the suite's embedded server, closed after the test."""
    from tests.gateway import DEFAULT_QUERY
    return lambda query=DEFAULT_QUERY: connect(gateway_server, query)
