"""Messages in guild text channels (openapi/messages.yaml)."""

from __future__ import annotations

from datetime import timedelta

from service.models import utcnow
from service.permissions import Permission
from service.snowflake import snowflake_from_time


def _general(guild) -> str:
    return guild["system_channel_id"]


def _send(client, account, channel_id, **body):
    return client.post(f"/v1/channels/{channel_id}/messages", json=body, headers=account.auth)


def test_send_and_read(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    response = _send(client, member, channel, content=f"hi <@{owner.user_id}> and <@!{member.user_id}>", nonce="n1")
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["content"].startswith("hi") and message["author"]["id"] == member.user_id
    assert {u["id"] for u in message["mentions"]} == {owner.user_id, member.user_id}
    assert message["type"] == 0 and message["nonce"] == "n1" and message["edited_timestamp"] is None
    assert message["channel_id"] == channel and message["guild_id"] == guild["id"]

    got = client.get(f"/v1/channels/{channel}/messages/{message['id']}", headers=owner.auth).json()
    assert got == message
    created = [e for e in published if e.name == "MESSAGE_CREATE"]
    assert len(created) == 1 and created[0].channel_id == int(channel) and created[0].data["id"] == message["id"]
    assert client.get(f"/v1/channels/{channel}", headers=owner.auth).json()["last_message_id"] == message["id"]


def test_history_pages_newest_first(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = _general(guild)
    ids = [_send(client, owner, channel, content=f"m{n}").json()["id"] for n in range(7)]
    url = f"/v1/channels/{channel}/messages"
    assert [m["id"] for m in client.get(url, headers=owner.auth).json()] == ids[::-1]
    assert [m["id"] for m in client.get(f"{url}?limit=3", headers=owner.auth).json()] == ids[6:3:-1]
    assert [m["id"] for m in client.get(f"{url}?limit=2&before={ids[3]}", headers=owner.auth).json()] == [ids[2], ids[1]]
    assert [m["id"] for m in client.get(f"{url}?limit=2&after={ids[3]}", headers=owner.auth).json()] == [ids[5], ids[4]]
    around = [m["id"] for m in client.get(f"{url}?limit=3&around={ids[3]}", headers=owner.auth).json()]
    assert around == [ids[4], ids[3], ids[2]]
    both = client.get(f"{url}?before={ids[3]}&after={ids[1]}", headers=owner.auth)
    assert both.status_code == 400
    assert client.get(f"{url}?limit=101", headers=owner.auth).status_code == 400


def test_rules_for_sending(client, register, make_guild, add_member):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    empty = _send(client, member, channel, content="   ")
    assert empty.status_code == 400 and empty.json()["code"] == "CANNOT_SEND_EMPTY_MESSAGE"
    too_long = _send(client, member, channel, content="x" * 2001)
    assert too_long.status_code == 400 and too_long.json()["errors"][0]["path"] == "content"
    voice = next(c for c in guild["channels"] if c["type"] == 2)
    wrong = _send(client, member, voice["id"], content="hi")
    assert wrong.status_code == 400 and wrong.json()["code"] == "CANNOT_SEND_MESSAGES_IN_NON_TEXT_CHANNEL"
    everyone = _send(client, member, channel, content="@everyone look").json()
    assert everyone["mention_everyone"] is False  # needs MENTION_EVERYONE
    assert _send(client, owner, channel, content="@everyone look").json()["mention_everyone"] is True

    client.put(f"/v1/channels/{channel}/permissions/{guild['id']}",
               json={"type": 0, "deny": str(int(Permission.SEND_MESSAGES))}, headers=owner.auth)
    denied = _send(client, member, channel, content="hello?")
    assert denied.status_code == 403 and denied.json()["code"] == "MISSING_PERMISSIONS"
    assert client.get(f"/v1/channels/{channel}/messages", headers=member.auth).status_code == 200


def test_enforce_nonce_answers_the_first_message(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = _general(guild)
    first = _send(client, owner, channel, content="once", nonce="abc", enforce_nonce=True).json()
    again = _send(client, owner, channel, content="twice", nonce="abc", enforce_nonce=True).json()
    assert again["id"] == first["id"] and again["content"] == "once"
    assert len(client.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json()) == 1


def test_slowmode(client, register, make_guild, add_member):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    client.patch(f"/v1/channels/{channel}", json={"rate_limit_per_user": 60}, headers=owner.auth)
    assert _send(client, member, channel, content="one").status_code == 200
    slowed = _send(client, member, channel, content="two")
    assert slowed.status_code == 429 and slowed.json()["code"] == "SLOWMODE_RATE_LIMITED"
    assert 0 < int(slowed.headers["Retry-After"]) <= 60 and 0 < slowed.json()["retry_after"] <= 60
    assert _send(client, owner, channel, content="owner bypasses").status_code == 200


def test_replies(client, register, make_guild, add_member):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    original = _send(client, owner, channel, content="question").json()
    reply = _send(client, member, channel, content="answer", message_reference={"message_id": original["id"]}).json()
    assert reply["type"] == 19
    assert reply["referenced_message"]["id"] == original["id"]
    assert reply["message_reference"]["message_id"] == original["id"]
    assert [u["id"] for u in reply["mentions"]] == [owner.user_id]
    quiet = _send(client, member, channel, content="answer", message_reference={"message_id": original["id"]},
                  allowed_mentions={"replied_user": False}).json()
    assert quiet["mentions"] == []
    unknown = _send(client, member, channel, content="x", message_reference={"message_id": "123"})
    assert unknown.status_code == 400
    client.delete(f"/v1/channels/{channel}/messages/{original['id']}", headers=owner.auth)
    assert client.get(f"/v1/channels/{channel}/messages/{reply['id']}", headers=owner.auth).json()[
        "referenced_message"] is None


def test_edit_and_delete(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    message = _send(client, member, channel, content="draft").json()
    url = f"/v1/channels/{channel}/messages/{message['id']}"

    edited = client.patch(url, json={"content": "final"}, headers=member.auth)
    assert edited.status_code == 200 and edited.json()["content"] == "final"
    assert edited.json()["edited_timestamp"] is not None
    by_owner = client.patch(url, json={"content": "hijack"}, headers=owner.auth)
    assert by_owner.status_code == 403 and by_owner.json()["code"] == "CANNOT_EDIT_OTHER_USER_MESSAGE"
    assert client.get(url, headers=owner.auth).json()["content"] == "final"

    other = _send(client, owner, channel, content="owner's").json()
    assert client.delete(f"/v1/channels/{channel}/messages/{other['id']}", headers=member.auth).status_code == 403
    assert client.delete(url, headers=owner.auth).status_code == 204  # MANAGE_MESSAGES
    assert client.get(url, headers=owner.auth).status_code == 404
    log = client.get(f"/v1/guilds/{guild['id']}/audit-logs?action_type=72", headers=owner.auth).json()
    assert log["audit_log_entries"][0]["target_id"] == member.user_id
    assert [e.name for e in published if e.name.startswith("MESSAGE")] == ["MESSAGE_CREATE", "MESSAGE_UPDATE",
                                                                            "MESSAGE_CREATE", "MESSAGE_DELETE"]


def test_bulk_delete(client, register, make_guild, add_member, app):
    from service.models import Message

    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    ids = [_send(client, owner, channel, content=f"m{n}").json()["id"] for n in range(3)]
    url = f"/v1/channels/{channel}/messages/bulk-delete"
    assert client.post(url, json={"messages": ids[:2]}, headers=member.auth).status_code == 403
    assert client.post(url, json={"messages": ids[:2]}, headers=owner.auth).status_code == 204
    left = client.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json()
    assert [m["id"] for m in left] == [ids[2]]
    assert client.post(url, json={"messages": [ids[2], ids[2]]}, headers=owner.auth).status_code == 400

    old_id = snowflake_from_time(utcnow() - timedelta(days=15))
    session = app.runtime.db.session
    try:
        session.add(Message(id=old_id, channel_id=int(channel), guild_id=int(guild["id"]), author_id=int(owner.user_id),
                            content="ancient", mentions=[], mention_roles=[], embeds=[], sticker_ids=[]))
        session.commit()
    finally:
        app.runtime.db.remove()
    too_old = client.post(url, json={"messages": [ids[2], str(old_id)]}, headers=owner.auth)
    assert too_old.status_code == 400 and too_old.json()["errors"][0]["code"] == "MESSAGE_TOO_OLD"
    assert len(client.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json()) == 2


def test_strangers_and_hidden_channels(client, register, make_guild, add_member):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    message = _send(client, owner, channel, content="secret plans").json()
    for response in (client.get(f"/v1/channels/{channel}/messages", headers=stranger.auth),
                     client.get(f"/v1/channels/{channel}/messages/{message['id']}", headers=stranger.auth),
                     _send(client, stranger, channel, content="let me in"),
                     client.post(f"/v1/channels/{channel}/typing", headers=stranger.auth)):
        assert response.status_code == 404 and "secret" not in response.text
    client.put(f"/v1/channels/{channel}/permissions/{guild['id']}",
               json={"type": 0, "deny": str(int(Permission.READ_MESSAGE_HISTORY))}, headers=owner.auth)
    blind = client.get(f"/v1/channels/{channel}/messages", headers=member.auth)
    assert blind.status_code == 403 and "secret" not in blind.text
    assert client.post(f"/v1/channels/{channel}/typing", headers=member.auth).status_code == 204


def test_mentions_of_ids_beyond_any_snowflake_mention_nobody(client, register, make_guild):
    owner = register()
    general = _general(make_guild(owner))
    content = f"<@99999999999999999999> <@&18446744073709551616> <@{owner.user_id}>"
    plain = _send(client, owner, general, content="x").json()["id"]
    edited = client.patch(f"/v1/channels/{general}/messages/{plain}", json={"content": content}, headers=owner.auth)
    for response in (_send(client, owner, general, content=content), edited):
        assert response.status_code == 200, response.text
        assert [u["id"] for u in response.json()["mentions"]] == [owner.user_id]
        assert response.json()["mention_roles"] == []
