"""Read states: acknowledging messages, clearing, bulk acknowledgement (openapi/read_states.yaml)."""

from __future__ import annotations

from sqlalchemy import select

from service.models import ReadState
from service.permissions import Permission


def _send(client, account, channel, content="hello"):
    response = client.post(f"/v1/channels/{channel}/messages", json={"content": content}, headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _ack(client, account, channel, message, **body):
    return client.post(f"/v1/channels/{channel}/messages/{message}/ack", json=body, headers=account.auth)


def _states(app, account) -> dict[str, tuple]:
    session = app.runtime.db.session
    try:
        rows = session.scalars(select(ReadState).where(ReadState.user_id == int(account.user_id)))
        return {str(r.channel_id): (str(r.last_message_id) if r.last_message_id else None, r.mention_count)
                for r in rows}
    finally:
        app.runtime.db.remove()


def test_acknowledging_moves_forwards_only(client, register, make_guild, add_member, published, app):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = guild["system_channel_id"]
    first, second, third = (_send(client, owner, channel, f"m{n}") for n in range(3))

    assert _ack(client, member, channel, second, mention_count=1).status_code == 204
    assert _states(app, member) == {channel: (second, 1)}
    event = published[-1]
    assert event.name == "MESSAGE_ACK" and event.user_ids == (int(member.user_id),) and event.channel_id is None
    assert event.data == {"channel_id": channel, "message_id": second, "mention_count": 1}

    # A late acknowledgement of an older message changes nothing and reports the stored state.
    assert _ack(client, member, channel, first).status_code == 204
    assert _states(app, member) == {channel: (second, 1)}
    assert published[-1].data["message_id"] == second
    # The user marking messages unread may go back.
    assert _ack(client, member, channel, first, manual=True).status_code == 204
    assert _states(app, member) == {channel: (first, 0)}
    assert published[-1].data == {"channel_id": channel, "message_id": first, "mention_count": 0, "manual": True}
    assert _ack(client, member, channel, third).status_code == 204
    assert _states(app, member) == {channel: (third, 0)}
    assert _states(app, owner) == {}  # one user's progress is theirs alone

    assert _ack(client, member, channel, third, mention_count=-1).status_code == 400
    assert client.post(f"/v1/channels/{channel}/messages/{third}/ack", headers=member.auth).status_code == 400


def test_acknowledging_needs_a_visible_channel_and_a_real_message(client, register, make_guild, add_member, app,
                                                                   published):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = guild["system_channel_id"]
    message = _send(client, owner, channel, "secret")
    other = client.post(f"/v1/guilds/{guild['id']}/channels", json={"type": 0, "name": "other"},
                        headers=owner.auth).json()["id"]
    start = len(published)

    for account, url, code in ((stranger, f"/v1/channels/{channel}/messages/{message}/ack", "UNKNOWN_CHANNEL"),
                               (member, f"/v1/channels/{channel}/messages/123456/ack", "UNKNOWN_MESSAGE"),
                               (member, f"/v1/channels/{other}/messages/{message}/ack", "UNKNOWN_MESSAGE")):
        response = client.post(url, json={}, headers=account.auth)
        assert response.status_code == 404 and response.json()["code"] == code, url
    assert client.delete(f"/v1/channels/{channel}/messages/ack", headers=stranger.auth).status_code == 404

    client.put(f"/v1/channels/{channel}/permissions/{guild['id']}",
               json={"type": 0, "deny": str(int(Permission.VIEW_CHANNEL))}, headers=owner.auth)
    hidden = _ack(client, member, channel, message)
    assert hidden.status_code == 403 and hidden.json()["code"] == "MISSING_ACCESS"
    assert client.delete(f"/v1/channels/{channel}/messages/ack", headers=member.auth).status_code == 403
    assert _states(app, member) == {} and _states(app, stranger) == {}
    assert not [e for e in published[start:] if e.name == "MESSAGE_ACK"]


def test_bots_have_no_read_states(client, register, make_guild):
    owner = register()
    application = client.post("/v1/oauth2/applications", json={"name": "Reader"}, headers=owner.auth).json()
    bot = {"Authorization": f"Bot {application['bot']['token']}"}
    guild = make_guild(owner)
    channel = guild["system_channel_id"]
    message = _send(client, owner, channel)
    assert client.post(f"/v1/channels/{channel}/messages/{message}/ack", json={}, headers=bot).status_code == 401
    body = {"read_states": [{"channel_id": channel, "message_id": message}]}
    assert client.post("/v1/read-states/ack-bulk", json=body, headers=bot).status_code == 401


def test_clearing_is_not_deleting_a_message(client, register, make_guild, app):
    owner = register()
    guild = make_guild(owner)
    channel = guild["system_channel_id"]
    message = _send(client, owner, channel)
    assert _ack(client, owner, channel, message).status_code == 204
    assert client.post(f"/v1/channels/{channel}/pins/ack", headers=owner.auth).status_code == 204

    # /messages/ack is its own path, not a message id: it clears and leaves the history alone.
    cleared = client.delete(f"/v1/channels/{channel}/messages/ack", headers=owner.auth)
    assert cleared.status_code == 204, cleared.text
    assert _states(app, owner) == {}
    assert client.get(f"/v1/channels/{channel}/messages/{message}", headers=owner.auth).status_code == 200
    assert client.delete(f"/v1/channels/{channel}/messages/ack", headers=owner.auth).status_code == 204  # again
    assert client.get(f"/v1/channels/{channel}/messages/ack", headers=owner.auth).status_code == 405
    # ...and a message id still reaches the message.
    assert client.delete(f"/v1/channels/{channel}/messages/{message}", headers=owner.auth).status_code == 204
    assert client.get(f"/v1/channels/{channel}/messages/{message}", headers=owner.auth).status_code == 404


def test_bulk_skips_what_the_caller_cannot_see(client, register, make_guild, add_member, app, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    general = guild["system_channel_id"]
    hidden = client.post(f"/v1/guilds/{guild['id']}/channels", json={"type": 0, "name": "staff"},
                         headers=owner.auth).json()["id"]
    client.put(f"/v1/channels/{hidden}/permissions/{guild['id']}",
               json={"type": 0, "deny": str(int(Permission.VIEW_CHANNEL))}, headers=owner.auth)
    foreign_owner = register()
    foreign = make_guild(foreign_owner, "Foreign")["system_channel_id"]
    older, newer = _send(client, owner, general), _send(client, owner, general)
    secret = _send(client, owner, hidden)
    outside = _send(client, foreign_owner, foreign)
    assert _ack(client, member, general, newer).status_code == 204
    start = len(published)

    body = {"read_states": [
        {"channel_id": general, "message_id": older},  # older than what is stored: no change
        {"channel_id": hidden, "message_id": secret},
        {"channel_id": foreign, "message_id": outside},
        {"channel_id": "123456", "message_id": older},
        {"channel_id": int(general), "message_id": secret},  # not a message of that channel
    ]}
    response = client.post("/v1/read-states/ack-bulk", json=body, headers=member.auth)
    assert response.status_code == 204, response.text
    assert _states(app, member) == {general: (newer, 0)}
    acks = [e for e in published[start:] if e.name == "MESSAGE_ACK"]
    assert [(e.data["channel_id"], e.data["message_id"]) for e in acks] == [(general, newer)]  # the stored state

    other = client.post(f"/v1/guilds/{guild['id']}/channels", json={"type": 0, "name": "other"},
                        headers=owner.auth).json()["id"]
    fresh = _send(client, owner, other)
    body = {"read_states": [{"channel_id": other, "message_id": fresh}, {"channel_id": hidden, "message_id": secret},
                            {"channel_id": general, "message_id": older}]}
    assert client.post("/v1/read-states/ack-bulk", json=body, headers=member.auth).status_code == 204
    assert _states(app, member) == {general: (newer, 0), other: (fresh, 0)}
    acks = [e for e in published[start:] if e.name == "MESSAGE_ACK"][1:]
    assert sorted(e.data["channel_id"] for e in acks) == sorted([general, other])
    assert all(e.user_ids == (int(member.user_id),) for e in acks)
    assert next(e for e in acks if e.data["channel_id"] == general).data["message_id"] == newer

    for bad in ({"read_states": []}, {"read_states": [{"channel_id": general}]}, {},
                {"read_states": [{"channel_id": general, "message_id": newer}] * 101}):
        assert client.post("/v1/read-states/ack-bulk", json=bad, headers=member.auth).status_code == 400, bad
