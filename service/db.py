"""Engine and sessions: SQLite by default, PostgreSQL through DATABASE_URL.

Request handlers and the authentication step share one ``scoped_session`` registry
(one session per thread); whoever opens work calls ``remove()`` when it ends.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import BigInteger, any_, bindparam, create_engine, event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import scoped_session, sessionmaker


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgres URLs, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the one writer
            # With WAL, NORMAL cannot corrupt the file; a power cut may lose the last commits, an app
            # crash loses none. FULL's fsync per commit, under the single write lock, halved send throughput.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


_ID_ARRAY = ARRAY(BigInteger)  # one type object: a new one per call costs a cache-key computation each time


def escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern whose escape character is a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def id_in(session, column, ids):
    """``column IN ids`` for a batch of integer ids.

    On PostgreSQL this is ``column = ANY(array)``: one statement text whatever the batch size,
    so psycopg and the server reuse its parse, where ``IN (...)`` renders a new text per count.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=_ID_ARRAY))
    return column.in_(ids)


class Database:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.session = scoped_session(sessionmaker(bind=self.engine, expire_on_commit=False))

    def remove(self) -> None:
        self.session.remove()

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (what ``make run`` and the tests do)."""
    from alembic import command
    from alembic.config import Config

    from service.config import PROJECT_ROOT

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


def lock_row(session, model, row_id: int) -> None:
    """Hold ``row_id``'s write lock until the transaction ends.

    Count-then-insert limits (roles, channels, emojis per guild; guilds per user) take it
    first, so two requests cannot both see room for one more. On PostgreSQL it is the row's
    lock; on SQLite the statement takes the database's single write lock.
    """
    from sqlalchemy import update

    session.execute(update(model).where(model.id == row_id).values(id=model.id))
