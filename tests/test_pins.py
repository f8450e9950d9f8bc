"""Pinned messages (openapi/pins.yaml)."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import select

from service import pins
from service.models import ReadState
from service.permissions import Permission


def _send(client, account, channel, content="hello"):
    response = client.post(f"/v1/channels/{channel}/messages", json={"content": content}, headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _pin(client, account, channel, message_id, method="PUT", **headers):
    return client.request(method, f"/v1/channels/{channel}/pins/{message_id}", headers={**account.auth, **headers})


def _pins(client, account, channel, query=""):
    response = client.get(f"/v1/channels/{channel}/messages/pins{query}", headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _grant(client, owner, guild, account, permissions: int):
    role = client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": "Pinner", "permissions": str(permissions)},
                       headers=owner.auth)
    assert role.status_code == 200, role.text
    given = client.put(f"/v1/guilds/{guild['id']}/members/{account.user_id}/roles/{role.json()['id']}",
                       headers=owner.auth)
    assert given.status_code == 204, given.text


def _history(client, account, channel):
    return client.get(f"/v1/channels/{channel}/messages", headers=account.auth).json()


def test_pin_and_unpin(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = guild["system_channel_id"]
    message = _send(client, member, channel, "remember this")
    start = len(published)

    response = _pin(client, owner, channel, message["id"], **{"X-Audit-Log-Reason": quote("worth keeping")})
    assert response.status_code == 204, response.text
    assert [e.name for e in published[start:]] == ["CHANNEL_PINS_UPDATE", "MESSAGE_CREATE", "MESSAGE_UPDATE"]
    assert all(e.channel_id == int(channel) for e in published[start:])
    pins_update, created, updated = published[start:]
    assert pins_update.data["channel_id"] == channel and pins_update.data["last_pin_timestamp"] is not None
    assert updated.data["id"] == message["id"] and updated.data["pinned"] is True

    notice, pinned = _history(client, member, channel)[:2]
    assert notice["type"] == 6 and notice["author"]["id"] == owner.user_id and notice["id"] == created.data["id"]
    assert notice["message_reference"]["message_id"] == message["id"] and notice["content"] == ""
    assert pinned["id"] == message["id"] and pinned["pinned"] is True
    assert client.get(f"/v1/channels/{channel}", headers=owner.auth).json()["last_message_id"] == notice["id"]

    listed = _pins(client, member, channel)
    assert listed["has_more"] is False and len(listed["items"]) == 1
    assert listed["items"][0]["message"]["id"] == message["id"] and listed["items"][0]["message"]["pinned"] is True
    assert listed["items"][0]["pinned_at"] == pins_update.data["last_pin_timestamp"]

    log = client.get(f"/v1/guilds/{guild['id']}/audit-logs?action_type=74", headers=owner.auth).json()
    entry = log["audit_log_entries"][0]
    assert entry["user_id"] == owner.user_id and entry["target_id"] == message["id"]
    assert entry["options"] == {"channel_id": channel, "message_id": message["id"]} and entry["reason"] == "worth keeping"

    # Pinning again changes nothing: no second notice, no events.
    count = len(published)
    assert _pin(client, owner, channel, message["id"]).status_code == 204
    assert len(published) == count and len(_history(client, owner, channel)) == 2

    assert _pin(client, owner, channel, message["id"], "DELETE").status_code == 204
    assert [e.name for e in published[count:]] == ["CHANNEL_PINS_UPDATE", "MESSAGE_UPDATE"]
    assert published[count].data["last_pin_timestamp"] is None and published[-1].data["pinned"] is False
    assert _pins(client, member, channel) == {"items": [], "has_more": False}
    assert client.get(f"/v1/guilds/{guild['id']}/audit-logs?action_type=75", headers=owner.auth).json()[
        "audit_log_entries"][0]["target_id"] == message["id"]
    count = len(published)
    assert _pin(client, owner, channel, message["id"], "DELETE").status_code == 204  # already unpinned
    assert len(published) == count


def test_who_may_pin(client, register, make_guild, add_member, published):
    owner, member, pinner, moderator, stranger = (register() for _ in range(5))
    guild = make_guild(owner)
    for account in (member, pinner, moderator):
        add_member(account, guild)
    _grant(client, owner, guild, pinner, int(Permission.PIN_MESSAGES))
    _grant(client, owner, guild, moderator, int(Permission.MANAGE_MESSAGES))
    channel = guild["system_channel_id"]
    first, second = _send(client, owner, channel, "secret one"), _send(client, owner, channel, "secret two")
    start = len(published)

    for method in ("PUT", "DELETE"):
        denied = _pin(client, member, channel, first["id"], method)
        assert denied.status_code == 403 and denied.json()["permissions"] == ["PIN_MESSAGES"]
    assert not [e for e in published[start:]] and len(_history(client, owner, channel)) == 2

    for method, url in (("PUT", f"/v1/channels/{channel}/pins/{first['id']}"),
                        ("DELETE", f"/v1/channels/{channel}/pins/{first['id']}"),
                        ("GET", f"/v1/channels/{channel}/messages/pins"),
                        ("POST", f"/v1/channels/{channel}/pins/ack")):
        response = client.request(method, url, headers=stranger.auth)
        assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_CHANNEL", (method, url)
        assert "secret" not in response.text

    assert _pin(client, pinner, channel, first["id"]).status_code == 204
    assert _pin(client, moderator, channel, second["id"]).status_code == 204
    assert [i["message"]["id"] for i in _pins(client, member, channel)["items"]] == [second["id"], first["id"]]

    client.put(f"/v1/channels/{channel}/permissions/{guild['id']}",
               json={"type": 0, "deny": str(int(Permission.READ_MESSAGE_HISTORY))}, headers=owner.auth)
    blind = client.get(f"/v1/channels/{channel}/messages/pins", headers=member.auth)
    assert blind.status_code == 403 and "secret" not in blind.text
    client.put(f"/v1/channels/{channel}/permissions/{guild['id']}",
               json={"type": 0, "deny": str(int(Permission.VIEW_CHANNEL))}, headers=owner.auth)
    for method, url in (("DELETE", f"/v1/channels/{channel}/pins/{first['id']}"),
                        ("GET", f"/v1/channels/{channel}/messages/pins"),
                        ("POST", f"/v1/channels/{channel}/pins/ack")):
        response = client.request(method, url, headers=member.auth)
        assert response.status_code == 403 and response.json()["code"] == "MISSING_ACCESS", (method, url)
    assert len(_pins(client, owner, channel)["items"]) == 2


def test_pins_list_newest_pin_first_and_pages(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = guild["system_channel_id"]
    a, b, c = (_send(client, owner, channel, f"m{n}")["id"] for n in range(3))
    for message_id in (c, a, b):  # pin order, not message order, decides
        assert _pin(client, owner, channel, message_id).status_code == 204
    listed = _pins(client, owner, channel)
    assert [i["message"]["id"] for i in listed["items"]] == [b, a, c]
    first = _pins(client, owner, channel, "?limit=2")
    assert [i["message"]["id"] for i in first["items"]] == [b, a] and first["has_more"] is True
    cursor = quote(first["items"][-1]["pinned_at"])
    rest = _pins(client, owner, channel, f"?limit=2&before={cursor}")
    assert [i["message"]["id"] for i in rest["items"]] == [c] and rest["has_more"] is False
    assert client.get(f"/v1/channels/{channel}/messages/pins?before=yesterday", headers=owner.auth).status_code == 400
    too_early = client.get(f"/v1/channels/{channel}/messages/pins", params={"before": "0001-01-01T00:00:00+05:00"},
                           headers=owner.auth)
    assert too_early.status_code == 400 and too_early.json()["code"] == "INVALID_FORM_BODY"
    assert client.get(f"/v1/channels/{channel}/messages/pins?limit=51", headers=owner.auth).status_code == 400
    assert _pins(client, owner, channel, "?before=2000-01-01T00:00:00Z") == {"items": [], "has_more": False}


def test_pin_limit_and_system_messages(client, register, make_guild, monkeypatch, published):
    monkeypatch.setattr(pins, "MAX_PINS", 2)
    owner = register()
    guild = make_guild(owner)
    channel = guild["system_channel_id"]
    ids = [_send(client, owner, channel, f"m{n}")["id"] for n in range(3)]
    assert _pin(client, owner, channel, ids[0]).status_code == 204
    assert _pin(client, owner, channel, ids[1]).status_code == 204
    count = len(published)
    full = _pin(client, owner, channel, ids[2])
    assert full.status_code == 400 and full.json()["code"] == "MAX_PINS_PER_CHANNEL" and full.json()["max"] == 2
    assert len(published) == count and len(_pins(client, owner, channel)["items"]) == 2
    assert _pin(client, owner, channel, ids[0], "DELETE").status_code == 204
    assert _pin(client, owner, channel, ids[2]).status_code == 204

    notice = next(m for m in _history(client, owner, channel) if m["type"] == 6)
    refused = _pin(client, owner, channel, notice["id"])
    assert refused.status_code == 400 and refused.json()["code"] == "CANNOT_MODIFY_SYSTEM_WEBHOOK"
    for target_channel, target in ((channel, "123456"),):
        missing = _pin(client, owner, target_channel, target)
        assert missing.status_code == 404 and missing.json()["code"] == "UNKNOWN_MESSAGE"


def test_acknowledge_pins(client, register, make_guild, add_member, published, app):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = guild["system_channel_id"]
    response = client.post(f"/v1/channels/{channel}/pins/ack", headers=member.auth)
    assert response.status_code == 204, response.text
    event = published[-1]
    assert event.name == "CHANNEL_PINS_ACK" and event.user_ids == (int(member.user_id),)
    assert event.channel_id is None and event.guild_id is None and event.data["channel_id"] == channel
    session = app.runtime.db.session
    try:
        state = session.scalars(select(ReadState).where(ReadState.user_id == int(member.user_id))).one()
        assert state.channel_id == int(channel) and state.last_pin_ack_at.isoformat() == event.data["timestamp"]
        assert state.last_message_id is None
    finally:
        app.runtime.db.remove()
    assert client.post(f"/v1/channels/{channel}/pins/ack", headers=member.auth).status_code == 204  # again is fine
