"""Reactions, pins and read states in DMs and group DMs; blocks; CHANNEL_PINS_UPDATE when pinned
messages are deleted; ``last_pin_timestamp`` on channel objects; pins racing each other."""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

from sqlalchemy import func, select

from service import messages, pins
from service.auth import Identity
from service.errors import APIError
from service.models import AuditLogEntry, Message

THUMBS = quote("\U0001f44d")
CHANNELS = "/v1/users/@me/channels"


def _ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


def _send(client, account, channel: str, content: str = "hello") -> str:
    return _ok(client.post(f"/v1/channels/{channel}/messages", json={"content": content}, headers=account.auth))["id"]


def _dm(client, a, b) -> str:
    return _ok(client.post(CHANNELS, json={"recipient_id": b.user_id}, headers=a.auth))["id"]


def _listed_channel(client, account, channel: str) -> dict:
    return next(c for c in _ok(client.get(CHANNELS, headers=account.auth)) if c["id"] == channel)


def _count(app, model, *conditions) -> int:
    session = app.runtime.db.session
    try:
        return session.scalar(select(func.count()).select_from(model).where(*conditions))
    finally:
        app.runtime.db.remove()


def test_recipients_react_pin_and_acknowledge_in_a_dm(client, app, register, published):
    alice, bob = register(), register()
    dm = _dm(client, alice, bob)
    message = _send(client, alice, dm, "pin me")
    published.clear()

    _ok(client.put(f"/v1/channels/{dm}/messages/{message}/reactions/{THUMBS}/@me", headers=bob.auth), 204)
    added = published[-1]
    assert added.name == "MESSAGE_REACTION_ADD" and added.channel_id == int(dm) and added.guild_id is None
    assert added.data["user_id"] == bob.user_id and "member" not in added.data  # a DM has no members
    reactions = _ok(client.get(f"/v1/channels/{dm}/messages/{message}", headers=alice.auth))["reactions"]
    assert [(r["count"], r["me"]) for r in reactions] == [(1, False)]
    assert [u["id"] for u in _ok(client.get(f"/v1/channels/{dm}/messages/{message}/reactions/{THUMBS}",
                                            headers=alice.auth))] == [bob.user_id]

    _ok(client.put(f"/v1/channels/{dm}/pins/{message}", headers=bob.auth), 204)
    update, notice = published[-3], published[-2]
    assert update.name == "CHANNEL_PINS_UPDATE" and update.data["last_pin_timestamp"] is not None
    assert notice.name == "MESSAGE_CREATE" and notice.data["type"] == 6 and notice.data["author"]["id"] == bob.user_id
    assert _count(app, AuditLogEntry) == 0  # a DM has no audit log
    listed = _ok(client.get(f"/v1/channels/{dm}/messages/pins", headers=alice.auth))["items"]
    assert [(i["message"]["id"], i["pinned_at"]) for i in listed] == [(message, update.data["last_pin_timestamp"])]
    for account in (alice, bob):
        seen = _listed_channel(client, account, dm)
        assert seen["last_pin_timestamp"] == update.data["last_pin_timestamp"]
        assert seen["last_message_id"] == notice.data["id"]

    _ok(client.post(f"/v1/channels/{dm}/messages/{message}/ack", json={}, headers=bob.auth), 204)
    assert published[-1].name == "MESSAGE_ACK" and published[-1].user_ids == (int(bob.user_id),)
    _ok(client.post("/v1/read-states/ack-bulk", json={"read_states": [{"channel_id": dm, "message_id": notice.data["id"]}]},
                    headers=alice.auth), 204)
    assert published[-1].name == "MESSAGE_ACK" and published[-1].data["message_id"] == notice.data["id"]
    _ok(client.post(f"/v1/channels/{dm}/pins/ack", headers=alice.auth), 204)
    assert published[-1].name == "CHANNEL_PINS_ACK" and published[-1].user_ids == (int(alice.user_id),)

    # Nobody moderates a DM: others' reactions stay, as do others' messages.
    for account, path in ((alice, f"/channels/{dm}/messages/{message}/reactions/{THUMBS}/{bob.user_id}"),
                          (alice, f"/channels/{dm}/messages/{message}/reactions"),
                          (bob, f"/channels/{dm}/messages/{message}")):
        refused = client.delete("/v1" + path, headers=account.auth)
        assert refused.status_code == 403 and refused.json()["code"] == "MISSING_PERMISSIONS", path
    _ok(client.delete(f"/v1/channels/{dm}/messages/{message}/reactions/{THUMBS}/@me", headers=bob.auth), 204)
    _ok(client.delete(f"/v1/channels/{dm}/pins/{message}", headers=alice.auth), 204)
    assert _listed_channel(client, bob, dm)["last_pin_timestamp"] is None


def test_blocks_end_reacting_and_pinning_in_a_dm(client, register, published):
    alice, bob = register(), register()
    dm = _dm(client, alice, bob)
    mine, theirs = _send(client, alice, dm), _send(client, bob, dm)
    _ok(client.put(f"/v1/channels/{dm}/messages/{mine}/reactions/{THUMBS}/@me", headers=alice.auth), 204)
    _ok(client.put(f"/v1/users/@me/relationships/{alice.user_id}", json={"type": 2}, headers=bob.auth))
    published.clear()
    # Either side, a new reaction or joining one, a pin: each would reach the other, as a message would.
    for account, path in ((alice, f"/channels/{dm}/messages/{theirs}/reactions/{THUMBS}/@me"),
                          (bob, f"/channels/{dm}/messages/{mine}/reactions/{THUMBS}/@me"),
                          (alice, f"/channels/{dm}/pins/{theirs}"), (bob, f"/channels/{dm}/pins/{mine}")):
        refused = client.put("/v1" + path, headers=account.auth)
        assert refused.status_code == 403 and refused.json()["code"] == "CANNOT_SEND_MESSAGES_TO_USER", path
    assert published == []
    # Taking one's own reaction back and reading stay possible.
    _ok(client.delete(f"/v1/channels/{dm}/messages/{mine}/reactions/{THUMBS}/@me", headers=alice.auth), 204)
    assert _ok(client.get(f"/v1/channels/{dm}/messages/{mine}", headers=alice.auth))["reactions"] == []
    assert _ok(client.get(f"/v1/channels/{dm}/messages/pins", headers=bob.auth))["items"] == []


def test_group_dm_recipients_react_and_pin(client, register):
    alice, bob = register(), register()
    _ok(client.put(f"/v1/users/@me/relationships/{bob.user_id}", headers=alice.auth))
    _ok(client.put(f"/v1/users/@me/relationships/{alice.user_id}", headers=bob.auth))
    group = _ok(client.post(CHANNELS, json={"recipients": [bob.user_id]}, headers=alice.auth))["id"]
    message = _send(client, alice, group)
    _ok(client.put(f"/v1/channels/{group}/messages/{message}/reactions/{THUMBS}/@me", headers=bob.auth), 204)
    _ok(client.put(f"/v1/channels/{group}/pins/{message}", headers=bob.auth), 204)
    pinned = _ok(client.get(f"/v1/channels/{group}/messages/{message}", headers=alice.auth))
    assert pinned["pinned"] is True and pinned["reactions"][0]["count"] == 1
    assert _listed_channel(client, alice, group)["last_pin_timestamp"] is not None


def test_deleting_pinned_messages_updates_the_pins(client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    channel = guild["system_channel_id"]
    first, second, third, plain = (_send(client, owner, channel, f"m{n}") for n in range(4))
    stamps = {}
    for message in (first, second, third):
        _ok(client.put(f"/v1/channels/{channel}/pins/{message}", headers=owner.auth), 204)
        stamps[message] = published[-3].data["last_pin_timestamp"]

    def channel_stamp() -> str | None:
        listed = _ok(client.get(f"/v1/guilds/{guild['id']}/channels", headers=owner.auth))
        one = _ok(client.get(f"/v1/channels/{channel}", headers=owner.auth))["last_pin_timestamp"]
        assert next(c for c in listed if c["id"] == channel)["last_pin_timestamp"] == one
        return one

    assert channel_stamp() == stamps[third]
    published.clear()
    _ok(client.delete(f"/v1/channels/{channel}/messages/{third}", headers=owner.auth), 204)
    assert [e.name for e in published] == ["MESSAGE_DELETE", "CHANNEL_PINS_UPDATE"]
    assert published[-1].data == {"channel_id": channel, "guild_id": guild["id"], "last_pin_timestamp": stamps[second]}
    assert channel_stamp() == stamps[second]

    published.clear()
    _ok(client.delete(f"/v1/channels/{channel}/messages/{plain}", headers=owner.auth), 204)
    assert [e.name for e in published] == ["MESSAGE_DELETE"]  # no pin went

    published.clear()
    _ok(client.post(f"/v1/channels/{channel}/messages/bulk-delete", json={"messages": [first, second]},
                    headers=owner.auth), 204)
    assert [e.name for e in published] == ["MESSAGE_DELETE_BULK", "CHANNEL_PINS_UPDATE"]
    assert published[-1].data["last_pin_timestamp"] is None and channel_stamp() is None


def _race(app, calls) -> list:
    """Run each call (a function of a session) in its own thread and session, all at once."""
    rt = app.runtime
    start = threading.Barrier(len(calls), timeout=30)
    outcomes: list = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            start.wait()
            outcomes[index] = call(rt.db.session)
        except APIError as exc:
            outcomes[index] = exc.code
        except Exception as exc:  # reported by the assertions
            outcomes[index] = exc
        finally:
            rt.db.remove()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def test_racing_pins_keep_the_limit_and_pin_once(app, client, register, make_guild, monkeypatch):
    """Every pinner is held after its checks and before it counts the pins: without the channel's lock
    they would all count the same pins and all pin, and several notices would post for one message."""
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    ids = [_send(client, owner, channel, f"m{n}") for n in range(4)]
    checked = messages.require_not_blocked

    def held(*args):
        checked(*args)
        time.sleep(0.2)

    monkeypatch.setattr(messages, "require_not_blocked", held)
    monkeypatch.setattr(pins, "MAX_PINS", 2)
    rt, identity = app.runtime, Identity(int(owner.user_id), "session")

    def pin(message_id):
        return lambda session: pins.pin(rt, session, identity, channel, message_id, None)

    outcomes = _race(app, [pin(i) for i in ids])
    assert sorted(map(str, outcomes)) == ["MAX_PINS_PER_CHANNEL"] * 2 + ["None"] * 2
    pinned = ids[outcomes.index(None)]
    _ok(client.delete(f"/v1/channels/{channel}/pins/{pinned}", headers=owner.auth), 204)
    assert _race(app, [pin(pinned)] * 3) == [None] * 3
    assert _count(app, Message, Message.channel_id == int(channel), Message.type == pins.PINNED_MESSAGE_TYPE,
                  Message.referenced_message_id == int(pinned)) == 2  # its first pin's notice and one more
