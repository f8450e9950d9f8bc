"""The mentions inbox (openapi/mentions.yaml): direct, role and @everyone mentions the caller may still read."""

from __future__ import annotations

from sqlalchemy import func, select

from service.models import MessageMention
from service.permissions import Permission

MENTIONS = "/v1/users/@me/mentions"


def _general(guild) -> str:
    return guild["system_channel_id"]


def _send(client, account, channel_id, content, **body) -> dict:
    response = client.post(f"/v1/channels/{channel_id}/messages", json={"content": content, **body},
                           headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _inbox(client, account, query: str = "") -> list[str]:
    response = client.get(f"{MENTIONS}{query}", headers=account.auth)
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()]


def _role(client, owner, guild, member, name="team") -> str:
    role = client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": name, "mentionable": True},
                       headers=owner.auth).json()
    assert client.put(f"/v1/guilds/{guild['id']}/members/{member.user_id}/roles/{role['id']}",
                      headers=owner.auth).status_code == 204
    return role["id"]


def _rows_of(app, message_id: str) -> int:
    session = app.runtime.db.session
    try:
        return session.scalar(select(func.count()).select_from(MessageMention)
                              .where(MessageMention.message_id == int(message_id)))
    finally:
        app.runtime.db.remove()


def test_direct_mentions_and_replies_newest_first(client, register, make_guild, add_member):
    owner, member, bystander = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    add_member(bystander, guild)
    channel = _general(guild)
    first = _send(client, owner, channel, f"hi <@{member.user_id}>")
    _send(client, owner, channel, "nobody in particular")
    _send(client, member, channel, f"talking to myself <@{member.user_id}>")  # one's own message is no mention
    question = _send(client, member, channel, "a question")
    reply = _send(client, owner, channel, "an answer", message_reference={"message_id": question["id"]})
    twice = _send(client, owner, channel, f"<@{member.user_id}> <@!{member.user_id}> again")

    response = client.get(MENTIONS, headers=member.auth)
    assert response.status_code == 200
    assert [m["id"] for m in response.json()] == [twice["id"], reply["id"], first["id"]]
    assert response.json()[2] == first
    assert _inbox(client, member, "?limit=2") == [twice["id"], reply["id"]]
    assert _inbox(client, member, f"?before={reply['id']}") == [first["id"]]
    assert _inbox(client, bystander) == [] and _inbox(client, owner) == []
    assert client.get(f"{MENTIONS}?limit=101", headers=member.auth).status_code == 400
    assert client.get(MENTIONS).status_code == 401


def test_role_and_everyone_mentions_follow_the_params(client, register, make_guild, add_member):
    owner, member, other = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    add_member(other, guild)
    channel = _general(guild)
    role = _role(client, owner, guild, member)
    direct = _send(client, owner, channel, f"<@{member.user_id}> look")["id"]
    role_ping = _send(client, owner, channel, f"<@&{role}> stand-up")["id"]
    everyone = _send(client, owner, channel, "@everyone lunch")["id"]
    here = _send(client, owner, channel, "@here cake")["id"]

    assert _inbox(client, member) == [here, everyone, role_ping, direct]
    assert _inbox(client, member, "?roles=false") == [here, everyone, direct]
    assert _inbox(client, member, "?everyone=false") == [role_ping, direct]
    assert _inbox(client, member, "?roles=false&everyone=false") == [direct]
    assert _inbox(client, member, "?guilds=false") == []
    assert _inbox(client, other) == [here, everyone]  # not in the role
    # Roles count as they are now: losing the role loses its mentions.
    assert client.delete(f"/v1/guilds/{guild['id']}/members/{member.user_id}/roles/{role}",
                         headers=owner.auth).status_code == 204
    assert role_ping not in _inbox(client, member)


def test_only_channels_the_reader_may_still_read(client, register, make_guild, add_member):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    secret = client.post(f"/v1/guilds/{guild['id']}/channels", json={"type": 0, "name": "secret"},
                         headers=owner.auth).json()["id"]
    visible = _send(client, owner, channel, f"<@{member.user_id}> here")["id"]
    hidden = _send(client, owner, secret, f"<@{member.user_id}> there")["id"]
    assert _inbox(client, member) == [hidden, visible]

    for permission in (Permission.VIEW_CHANNEL, Permission.READ_MESSAGE_HISTORY):
        assert client.put(f"/v1/channels/{secret}/permissions/{member.user_id}",
                          json={"type": 1, "deny": str(int(permission))}, headers=owner.auth).status_code == 204
        assert _inbox(client, member) == [visible]
    assert client.delete(f"/v1/users/@me/guilds/{guild['id']}", headers=member.auth).status_code == 204
    assert _inbox(client, member) == []


def test_dms_of_others_never_appear(client, register, make_guild, add_member):
    alice, bob, carol = register(), register(), register()
    guild = make_guild(alice)
    add_member(bob, guild)
    add_member(carol, guild)
    dm = client.post("/v1/users/@me/channels", json={"recipient_id": bob.user_id}, headers=alice.auth).json()
    to_bob = _send(client, alice, dm["id"], f"<@{bob.user_id}> and <@{carol.user_id}> @everyone")
    assert [u["id"] for u in to_bob["mentions"]] == [bob.user_id]  # carol is not in this DM
    assert _inbox(client, bob) == [to_bob["id"]]
    assert _inbox(client, bob, "?guilds=false") == [to_bob["id"]]
    assert _inbox(client, carol) == []


def test_edits_and_deletes_keep_the_inbox_right(client, register, make_guild, add_member, app):
    owner, member, other = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    add_member(other, guild)
    channel = _general(guild)
    url = f"/v1/channels/{channel}/messages"
    message = _send(client, owner, channel, f"<@{member.user_id}> please review")["id"]
    assert _inbox(client, member) == [message]

    moved = client.patch(f"{url}/{message}", json={"content": f"<@{other.user_id}> please review"}, headers=owner.auth)
    assert moved.status_code == 200
    assert _inbox(client, member) == [] and _inbox(client, other) == [message]
    assert client.patch(f"{url}/{message}", json={"embeds": []}, headers=owner.auth).status_code == 200
    assert _inbox(client, other) == [message]  # an edit without content leaves mentions alone

    assert client.delete(f"{url}/{message}", headers=owner.auth).status_code == 204
    assert _inbox(client, other) == [] and _rows_of(app, message) == 0
    several = [_send(client, owner, channel, f"<@{other.user_id}> #{n}")["id"] for n in range(2)]
    assert client.post(f"{url}/bulk-delete", json={"messages": several}, headers=owner.auth).status_code == 204
    assert _inbox(client, other) == [] and [_rows_of(app, m) for m in several] == [0, 0]


def test_removing_mentions_from_the_inbox(client, register, make_guild, add_member, published):
    owner, member, other = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    add_member(other, guild)
    channel = _general(guild)
    ids = [_send(client, owner, channel, f"<@{member.user_id}> #{n}")["id"] for n in range(3)]
    everyone = _send(client, owner, channel, "@everyone news")["id"]
    unrelated = _send(client, owner, channel, "no mention")["id"]

    assert client.delete(f"{MENTIONS}/{ids[0]}", headers=member.auth).status_code == 204
    assert _inbox(client, member) == [everyone, ids[2], ids[1]]
    removed = [e for e in published if e.name == "RECENT_MENTION_DELETE"]
    assert [(e.data, e.user_ids) for e in removed] == [({"message_id": ids[0]}, (int(member.user_id),))]
    # Removing again, or what was never a mention, changes nothing and announces nothing.
    for message_id in (ids[0], unrelated, "9999999999999999999"):
        assert client.delete(f"{MENTIONS}/{message_id}", headers=member.auth).status_code == 204
    assert len([e for e in published if e.name == "RECENT_MENTION_DELETE"]) == 1

    read = client.post(f"{MENTIONS}/read", json={"message_ids": [ids[1], everyone, unrelated]}, headers=member.auth)
    assert read.status_code == 204
    assert _inbox(client, member) == [ids[2]]
    announced = [e.data["message_id"] for e in published if e.name == "RECENT_MENTION_DELETE"][1:]
    assert sorted(announced) == sorted([ids[1], everyone])  # what left the inbox, not the unrelated id
    assert _inbox(client, other) == [everyone]  # one reader's inbox is theirs alone
    empty = client.post(f"{MENTIONS}/read", json={"message_ids": []}, headers=member.auth)
    assert empty.status_code == 400
    # The messages themselves stay.
    assert client.get(f"/v1/channels/{channel}/messages/{ids[0]}", headers=member.auth).status_code == 200
