"""Where uploaded files live: one small interface, which the media route streams from (``open``).

Keys are relative, slash-separated names such as ``emojis/1380000000000000000``; each part is
letters, digits, ``.``, ``_`` or ``-`` and never ``.`` or ``..``, so no key can leave the
storage root. The content type travels with ``put`` for backends that keep it (an object
store); the local backend does not need it, since the rows that point at files carry it.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import event as sa_event

log = logging.getLogger("fluxer.storage")

KEY_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
MAX_KEY_PARTS = 8


class InvalidKey(ValueError):
    """A key that is not a plain relative name (absolute, ``..``, odd characters)."""


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidKey("empty key")
    parts = key.split("/")
    if len(parts) > MAX_KEY_PARTS or not all(KEY_PART.match(part) for part in parts):
        raise InvalidKey(f"invalid storage key {key!r}")
    return key


class Storage:
    """The interface every backend implements."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when nothing is stored under ``key``."""
        raise NotImplementedError

    def open(self, key: str) -> BinaryIO | None:
        """A binary stream of the stored bytes (the caller closes it), or None when nothing is stored."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Forget ``key``; deleting what is not there is not an error."""
        raise NotImplementedError


class LocalStorage(Storage):
    """Files under one directory; writes are atomic (a reader never sees half a file)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:  # belt and braces after check_key
            raise InvalidKey(f"storage key {key!r} leaves the storage directory")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(temporary, 0o644)  # mkstemp makes 0600; a media server may read as another user
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def open(self, key: str) -> BinaryIO | None:
        try:
            return self.path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except (IsADirectoryError, NotADirectoryError):
            return


def delete_quietly(storage: Storage, *keys: str) -> None:
    """Best-effort cleanup after the database has moved on; a leftover file is harmless."""
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # cleanup must never turn a success into an error
            log.warning("could not delete stored file", extra={"key": key}, exc_info=True)


_DOOMED_KEY = "fluxer.files_to_delete"


def delete_after_commit(session, *keys: str) -> None:
    """Delete these stored files once ``session`` commits the change that dropped their rows; a
    rollback keeps them. Every path that deletes rows with files goes through here."""
    if keys:
        session.info.setdefault(_DOOMED_KEY, []).extend(keys)


def attach(session_factory, storage: Storage) -> None:
    @sa_event.listens_for(session_factory, "after_commit")
    def _delete(session):
        delete_quietly(storage, *session.info.pop(_DOOMED_KEY, ()))

    @sa_event.listens_for(session_factory, "after_soft_rollback")
    def _keep(session, previous_transaction):
        if previous_transaction.parent is None:  # the whole transaction, not a savepoint
            session.info.pop(_DOOMED_KEY, None)


class PendingFiles:
    """Files written for rows that are not committed yet.

    Wrap the writes and the commit in ``with PendingFiles(storage) as pending:``; when the block
    fails, the files it wrote are deleted again, so a rolled-back row leaves no file behind.
    """

    def __init__(self, storage: Storage):
        self.storage = storage
        self.keys: list[str] = []

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.storage.put(key, data, content_type)
        self.keys.append(key)

    def __enter__(self) -> PendingFiles:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            delete_quietly(self.storage, *self.keys)
