"""Many clients sending into one channel at once, through the real send path (service.messages.send,
each call in its own session as a request would be), while a reader follows the channel with
``after`` as a polling client does: every message is stored exactly once, history pages through all
of them newest first without a gap or a repeat, and ids follow commit order, so the follower never
skips a message that committed after it had read past a larger id."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from service import messages
from service.auth import Identity
from service.models import Message
from tests.conftest import run_at_once

CLIENTS, PER_CLIENT = 8, 500


def _history(client, account, channel: str) -> list[int]:
    """The whole channel through the API, newest first, 100 at a time."""
    ids: list[int] = []
    while True:
        query = f"?limit=100&before={ids[-1]}" if ids else "?limit=100"
        response = client.get(f"/v1/channels/{channel}/messages{query}", headers=account.auth)
        assert response.status_code == 200, response.text
        page = [int(m["id"]) for m in response.json()]
        if not page:
            return ids
        ids += page


def test_concurrent_senders_in_one_channel(app, client, register, make_guild, add_member):
    owner = register()
    guild = make_guild(owner)
    channel = guild["system_channel_id"]
    senders = [owner, *(register() for _ in range(CLIENTS - 1))]
    for account in senders[1:]:
        add_member(account, guild)
    rt = app.runtime
    start = threading.Barrier(CLIENTS + 1, timeout=30)
    sent: dict[str, list[int]] = {a.user_id: [] for a in senders}  # each sender's ids, in sending order
    followed: list[int] = []
    errors: list[BaseException] = []
    writing = threading.Event()
    writing.set()

    def send(account) -> None:
        identity = Identity(int(account.user_id), "session")
        try:
            start.wait()
            for n in range(PER_CLIENT):
                body = {"content": f"message {n}", "nonce": f"{account.user_id}:{n}"}
                sent[account.user_id].append(int(messages.send(rt, rt.db.session, identity, channel, body)["id"]))
                rt.db.remove()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            rt.db.remove()

    def follow() -> None:
        """Poll for messages after the newest one seen, until the senders are done and nothing is new."""
        identity = Identity(int(owner.user_id), "session")
        try:
            start.wait()
            while True:
                still_writing = writing.is_set()
                page = messages.list_messages(rt.db.session, identity, channel, limit=100, before=None,
                                              after=str(followed[-1]) if followed else "0", around=None)
                rt.db.remove()
                followed.extend(sorted(int(m["id"]) for m in page))
                if not page and not still_writing:
                    return
                if len(page) < 100:  # caught up: leave the senders the CPU for a moment
                    time.sleep(0.01)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            rt.db.remove()

    threads = [threading.Thread(target=send, args=(account,)) for account in senders]
    reader = threading.Thread(target=follow)
    for thread in [*threads, reader]:
        thread.start()
    for thread in threads:
        thread.join(120)
    writing.clear()
    reader.join(60)
    assert not any(t.is_alive() for t in [*threads, reader]), "a sender or the reader never finished"
    assert errors == []

    total = CLIENTS * PER_CLIENT
    session = rt.db.session
    try:
        stored = session.execute(select(Message.id, Message.author_id, Message.nonce)
                                 .where(Message.channel_id == int(channel))).all()
        duplicated = session.scalar(select(func.count()).select_from(
            select(Message.nonce).where(Message.channel_id == int(channel)).group_by(Message.nonce)
            .having(func.count() > 1).subquery()))
    finally:
        rt.db.remove()
    assert len(stored) == total and duplicated == 0
    assert {nonce for _id, _author, nonce in stored} == {f"{a.user_id}:{n}" for a in senders for n in range(PER_CLIENT)}
    stored_ids = sorted(i for i, _author, _nonce in stored)
    assert sorted(i for ids in sent.values() for i in ids) == stored_ids  # each answer names its stored message
    for ids in sent.values():  # one client's messages are in the order it sent them
        assert ids == sorted(ids)

    history = _history(client, owner, channel)
    assert history == stored_ids[::-1]  # strictly decreasing, nothing missing, nothing twice
    # Ids follow commit order: a message that committed later never has a smaller id than one already
    # read, so following with ``after`` saw everything, once, in order.
    assert followed == stored_ids
    assert client.get(f"/v1/channels/{channel}", headers=owner.auth).json()["last_message_id"] == str(stored_ids[-1])


def test_racing_retries_with_one_enforced_nonce_store_one_message(app, register, make_guild):
    # A client retrying a send (same nonce, enforce_nonce) from several connections at once gets one
    # message back every time: the check runs under the channel's lock, not before it.
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    rt = app.runtime
    tries = 6
    body = {"content": "only once", "nonce": "retry-1", "enforce_nonce": True}

    def retry(session):
        return messages.send(rt, session, Identity(int(owner.user_id), "session"), channel, body)["id"]

    answers, errors = run_at_once(app, *[retry] * tries)
    assert errors == []
    assert len(answers) == tries and len(set(answers)) == 1
    session = rt.db.session
    try:
        stored = session.scalar(select(func.count()).select_from(Message).where(Message.channel_id == int(channel)))
    finally:
        rt.db.remove()
    assert stored == 1
