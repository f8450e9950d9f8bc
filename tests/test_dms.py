"""DMs and group DMs (openapi/dms.yaml), and their messages through the channel message operations."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from service import dms, relationships
from service.auth import Identity
from service.models import Channel
from tests.conftest import run_at_once

CHANNELS = "/v1/users/@me/channels"


def _befriend(client, a, b) -> None:
    assert client.put(f"/v1/users/@me/relationships/{b.user_id}", headers=a.auth).status_code == 200
    assert client.put(f"/v1/users/@me/relationships/{a.user_id}", headers=b.auth).json()["type"] == 1


def _block(client, a, b) -> None:
    assert client.put(f"/v1/users/@me/relationships/{b.user_id}", json={"type": 2}, headers=a.auth).status_code == 200


def _open(client, a, b):
    return client.post(CHANNELS, json={"recipient_id": b.user_id}, headers=a.auth)


def _group(client, owner, *others):
    return client.post(CHANNELS, json={"recipients": [o.user_id for o in others]}, headers=owner.auth)


def _send(client, account, channel_id, content="hello"):
    return client.post(f"/v1/channels/{channel_id}/messages", json={"content": content}, headers=account.auth)


def _recipient_url(channel_id, account) -> str:
    return f"/v1/channels/{channel_id}/recipients/{account.user_id}"


def _listed(client, account) -> list[str]:
    response = client.get(CHANNELS, headers=account.auth)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()]


def _count_dms(app) -> int:
    session = app.runtime.db.session
    try:
        return session.scalar(select(func.count()).select_from(Channel).where(Channel.type == 1))
    finally:
        app.runtime.db.remove()


# --- DMs -----------------------------------------------------------------------------------


def test_a_pair_has_one_dm(client, register, published):
    alice, bob, carol = register(), register(), register()
    opened = _open(client, alice, bob)
    assert opened.status_code == 200, opened.text
    dm = opened.json()
    assert dm["type"] == 1 and dm["owner_id"] is None and dm["last_message_id"] is None and "guild_id" not in dm
    assert [u["id"] for u in dm["recipients"]] == [bob.user_id]
    assert _open(client, alice, bob).json()["id"] == dm["id"]
    from_bob = _open(client, bob, alice).json()
    assert from_bob["id"] == dm["id"] and [u["id"] for u in from_bob["recipients"]] == [alice.user_id]

    created = [e for e in published if e.name == "CHANNEL_CREATE"]
    assert sorted(e.user_ids for e in created) == sorted([(int(alice.user_id),), (int(bob.user_id),)])
    for event in created:  # each sees the other as the recipient
        assert event.guild_id is None and [u["id"] for u in event.data["recipients"]] == [
            alice.user_id if event.user_ids == (int(bob.user_id),) else bob.user_id]

    assert _listed(client, alice) == [dm["id"]] and _listed(client, bob) == [dm["id"]]
    assert _listed(client, carol) == []
    assert _open(client, carol, alice).json()["id"] != dm["id"]


def test_open_dm_errors(client, register):
    alice = register()
    myself = _open(client, alice, alice)
    assert myself.status_code == 400 and myself.json()["errors"][0]["path"] == "recipient_id"
    unknown = client.post(CHANNELS, json={"recipient_id": "123456789"}, headers=alice.auth)
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_USER"
    neither = client.post(CHANNELS, json={}, headers=alice.auth)
    assert neither.status_code == 400 and neither.json()["errors"][0]["code"] == "BASE_TYPE_REQUIRED"
    both = client.post(CHANNELS, json={"recipient_id": alice.user_id, "recipients": [alice.user_id]}, headers=alice.auth)
    assert both.status_code == 400 and both.json()["errors"][0]["path"] == "recipients"


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "control-without-lock"])
def test_opening_at_the_same_moment_makes_one_dm(app, register, monkeypatch, locked):
    """Both sides open the pair's DM at once. Each lookup is slowed so that both find nothing
    before either writes: with the lock the second waits and finds the first's channel; the
    control run without it shows that the same interleaving would otherwise make two."""
    alice, bob = register(), register()
    rt = app.runtime
    found = dms.find_dm

    def slow_find(session, a, b):
        channel = found(session, a, b)
        time.sleep(0.3)
        return channel

    monkeypatch.setattr(dms, "find_dm", slow_find)
    if not locked:
        monkeypatch.setattr(relationships, "lock_users", lambda *args, **kwargs: None)
    def open_dm(me, other):
        return lambda session: dms.create(rt, session, Identity(int(me.user_id), "session"),
                                          {"recipient_id": other.user_id})["id"]

    results, errors = run_at_once(app, open_dm(alice, bob), open_dm(bob, alice))
    assert errors == []
    if locked:
        assert len(set(results)) == 1 and _count_dms(app) == 1
    else:
        assert len(set(results)) == 2 and _count_dms(app) == 2


def test_dm_messages_and_strangers(client, register, published):
    alice, bob, carol = register(), register(), register()
    dm = _open(client, alice, bob).json()["id"]
    published.clear()
    sent = _send(client, alice, dm, f"hi <@{bob.user_id}> and <@{carol.user_id}> @everyone")
    assert sent.status_code == 200, sent.text
    message = sent.json()
    assert message["guild_id"] is None and message["channel_id"] == dm
    assert [u["id"] for u in message["mentions"]] == [bob.user_id]  # carol is not in the DM
    assert message["mention_everyone"] is False
    [created] = [e for e in published if e.name == "MESSAGE_CREATE"]
    assert created.channel_id == int(dm) and created.guild_id is None

    history = client.get(f"/v1/channels/{dm}/messages", headers=bob.auth)
    assert history.status_code == 200 and [m["id"] for m in history.json()] == [message["id"]]
    assert client.get(f"/v1/channels/{dm}/messages/{message['id']}", headers=bob.auth).json()["content"] == \
        message["content"]
    reply = client.post(f"/v1/channels/{dm}/messages", headers=bob.auth,
                        json={"content": "hey", "message_reference": {"message_id": message["id"]}})
    assert reply.status_code == 200 and [u["id"] for u in reply.json()["mentions"]] == [alice.user_id]
    assert client.post(f"/v1/channels/{dm}/typing", headers=bob.auth).status_code == 204
    assert _listed(client, alice) == [dm]

    # The other recipient cannot moderate: no deleting or bulk deleting someone else's messages.
    others = client.delete(f"/v1/channels/{dm}/messages/{message['id']}", headers=bob.auth)
    assert others.status_code == 403 and others.json()["code"] == "MISSING_PERMISSIONS"
    bulk = client.post(f"/v1/channels/{dm}/messages/bulk-delete", headers=bob.auth,
                       json={"messages": [message["id"], reply.json()["id"]]})
    assert bulk.status_code == 403
    edited = client.patch(f"/v1/channels/{dm}/messages/{message['id']}", json={"content": "edited"}, headers=alice.auth)
    assert edited.status_code == 200 and edited.json()["content"] == "edited"

    for response in (client.get(f"/v1/channels/{dm}/messages", headers=carol.auth),
                     client.get(f"/v1/channels/{dm}/messages/{message['id']}", headers=carol.auth),
                     _send(client, carol, dm, "let me in"),
                     client.post(f"/v1/channels/{dm}/typing", headers=carol.auth),
                     client.patch(f"/v1/channels/{dm}/messages/{message['id']}", json={"content": "x"},
                                  headers=carol.auth),
                     client.delete(f"/v1/channels/{dm}/messages/{message['id']}", headers=carol.auth),
                     client.put(_recipient_url(dm, carol), headers=carol.auth),
                     client.get(f"/v1/channels/{dm}", headers=carol.auth)):
        assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_CHANNEL"
        assert "hi" not in response.text and "edited" not in response.text
    assert alice.user_id not in str(client.get(CHANNELS, headers=carol.auth).json())
    assert client.delete(f"/v1/channels/{dm}/messages/{message['id']}", headers=alice.auth).status_code == 204


def test_guild_only_channel_operations_still_refuse_dms(client, register):
    alice, bob = register(), register()
    dm = _open(client, alice, bob).json()["id"]
    for response in (client.patch(f"/v1/channels/{dm}", json={"name": "x"}, headers=alice.auth),
                     client.delete(f"/v1/channels/{dm}", headers=alice.auth),
                     client.post(f"/v1/channels/{dm}/invites", json={}, headers=alice.auth),
                     client.put(f"/v1/channels/{dm}/permissions/{bob.user_id}", json={"type": 1}, headers=alice.auth)):
        assert response.status_code == 404, response.text


def test_recipients_read_a_dm_as_a_channel_and_others_get_404(client, register):
    alice, bob, carol = register(), register(), register()
    opened = _open(client, alice, bob).json()
    for who in (alice, bob):
        response = client.get(f"/v1/channels/{opened['id']}", headers=who.auth)
        assert response.status_code == 200, response.text
        assert response.json()["type"] == 1
        assert [r["id"] for r in response.json()["recipients"]] == [bob.user_id if who is alice else alice.user_id]
    stranger = client.get(f"/v1/channels/{opened['id']}", headers=carol.auth)
    assert stranger.status_code == 404 and set(stranger.json()) == {"code", "message", "error"}


def test_blocks_end_new_dms_and_sending(client, register):
    alice, bob = register(), register()
    _block(client, alice, bob)
    for who, other in ((alice, bob), (bob, alice)):
        refused = _open(client, who, other)
        assert refused.status_code == 403 and refused.json()["code"] == "CANNOT_SEND_MESSAGES_TO_USER"
    assert _listed(client, alice) == [] and _listed(client, bob) == []
    assert client.delete(f"/v1/users/@me/relationships/{bob.user_id}", headers=alice.auth).status_code == 204
    dm = _open(client, alice, bob).json()["id"]
    first = _send(client, alice, dm, "before").json()

    _block(client, bob, alice)  # the DM stays readable; nobody sends in it while the block lasts
    assert _open(client, alice, bob).json()["id"] == dm
    for who in (alice, bob):
        refused = _send(client, who, dm)
        assert refused.status_code == 403 and refused.json()["code"] == "CANNOT_SEND_MESSAGES_TO_USER"
        typing = client.post(f"/v1/channels/{dm}/typing", headers=who.auth)
        assert typing.status_code == 403 and typing.json()["code"] == "CANNOT_SEND_MESSAGES_TO_USER"
        assert [m["id"] for m in client.get(f"/v1/channels/{dm}/messages", headers=who.auth).json()] == [first["id"]]
    client.delete(f"/v1/users/@me/relationships/{alice.user_id}", headers=bob.auth)
    assert _send(client, alice, dm, "after").status_code == 200


def test_bots_open_dms_only_with_people_they_share_a_guild_with(client, register, make_guild, add_member):
    owner, member, stranger = register(), register(), register()
    application = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Helper Bot"}).json()
    bot, bot_id = {"Authorization": f"Bot {application['bot']['token']}"}, application["bot"]["id"]
    refused = client.post(CHANNELS, json={"recipient_id": member.user_id}, headers=bot)
    assert refused.status_code == 403 and refused.json()["code"] == "CANNOT_SEND_MESSAGES_TO_USER"

    guild = make_guild(owner)
    add_member(member, guild)
    consent = client.post("/v1/oauth2/authorize/consent", headers=owner.auth,
                          json={"client_id": application["id"], "scope": "bot", "permissions": "0", "guild_id": guild["id"]})
    assert consent.status_code == 200, consent.text
    dm = client.post(CHANNELS, json={"recipient_id": member.user_id}, headers=bot)
    assert dm.status_code == 200, dm.text
    assert client.post(f"/v1/channels/{dm.json()['id']}/messages", json={"content": "beep"}, headers=bot).status_code == 200
    assert [c["id"] for c in client.get(CHANNELS, headers=bot).json()] == [dm.json()["id"]]

    # A person may write to a bot first; the bot then answers in that DM.
    theirs = client.post(CHANNELS, json={"recipient_id": bot_id}, headers=stranger.auth).json()["id"]
    assert client.post(CHANNELS, json={"recipient_id": stranger.user_id}, headers=bot).json()["id"] == theirs
    group = client.post(CHANNELS, json={"recipients": [member.user_id]}, headers=bot)
    assert group.status_code == 400 and group.json()["code"] == "GROUP_DM_RECIPIENTS_NOT_ADDABLE"
    assert client.get("/v1/users/@me/relationships", headers=bot).status_code == 401


# --- Group DMs -----------------------------------------------------------------------------


def test_group_dm_creation_and_limits(client, register, published):
    owner = register()
    friends = [register() for _ in range(10)]
    for friend in friends:
        _befriend(client, owner, friend)
    published.clear()
    created = _group(client, owner, *friends[:9], owner)  # the owner may list themselves; they count once
    assert created.status_code == 200, created.text
    group = created.json()
    assert group["type"] == 3 and group["owner_id"] == owner.user_id
    assert sorted(u["id"] for u in group["recipients"]) == sorted(f.user_id for f in friends[:9])
    events = [e for e in published if e.name == "CHANNEL_CREATE"]
    assert sorted(e.user_ids for e in events) == sorted((int(a.user_id),) for a in [owner, *friends[:9]])
    for event in events:
        assert len(event.data["recipients"]) == 9 and str(event.user_ids[0]) not in {
            u["id"] for u in event.data["recipients"]}
    assert _send(client, friends[3], group["id"], f"hi <@{friends[4].user_id}>").json()["mentions"][0]["id"] == \
        friends[4].user_id

    too_many = _group(client, owner, *friends)
    assert too_many.status_code == 400 and too_many.json()["code"] == "MAX_GROUP_DM_RECIPIENTS"
    assert too_many.json()["max"] == 10
    stranger = register()
    not_friend = _group(client, owner, friends[0], stranger)
    assert not_friend.status_code == 400 and not_friend.json()["code"] == "GROUP_DM_RECIPIENTS_NOT_ADDABLE"
    _block(client, stranger, owner)
    blocked = _group(client, owner, friends[0], stranger)
    assert blocked.status_code == 403 and blocked.json()["code"] == "CANNOT_SEND_MESSAGES_TO_USER"
    unknown = client.post(CHANNELS, json={"recipients": [friends[0].user_id, "123456789"]}, headers=owner.auth)
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["path"] == "recipients.1"
    alone = client.post(CHANNELS, json={"recipients": [owner.user_id]}, headers=owner.auth)
    assert alone.status_code == 400
    assert _listed(client, owner) == [group["id"]]


def test_max_group_dms(client, register, monkeypatch):
    monkeypatch.setattr(dms, "MAX_GROUP_DMS", 1)
    owner, friend, other = register(), register(), register()
    _befriend(client, owner, friend)
    _befriend(client, owner, other)
    assert _group(client, owner, friend).status_code == 200
    full = _group(client, owner, other)
    assert full.status_code == 400 and full.json()["code"] == "MAX_GROUP_DMS"
    _befriend(client, other, friend)
    also_full = _group(client, other, friend)  # friend is in one already
    assert also_full.status_code == 400 and also_full.json()["code"] == "MAX_GROUP_DMS"


def test_adding_recipients(client, register, published, monkeypatch, make_guild):
    monkeypatch.setattr(dms, "MAX_GROUP_DM_RECIPIENTS", 3)
    owner, member, newcomer, stranger, late = register(), register(), register(), register(), register()
    _befriend(client, owner, member)
    _befriend(client, member, newcomer)
    _befriend(client, member, late)
    group = _group(client, owner, member).json()["id"]
    published.clear()

    added = client.put(_recipient_url(group, newcomer), headers=member.auth)  # any recipient adds their friend
    assert added.status_code == 204, added.text
    [recipient_add] = [e for e in published if e.name == "CHANNEL_RECIPIENT_ADD"]
    assert sorted(recipient_add.user_ids) == sorted([int(owner.user_id), int(member.user_id)])
    assert recipient_add.data == {"channel_id": group, "user": client.get(f"/v1/users/{newcomer.user_id}",
                                                                         headers=owner.auth).json()}
    [created] = [e for e in published if e.name == "CHANNEL_CREATE"]
    assert created.user_ids == (int(newcomer.user_id),) and len(created.data["recipients"]) == 2
    assert _listed(client, newcomer) == [group]
    assert client.get(f"/v1/channels/{group}/messages", headers=newcomer.auth).status_code == 200

    published.clear()
    assert client.put(_recipient_url(group, newcomer), headers=owner.auth).status_code == 204  # already in
    assert published == []
    not_friend = client.put(_recipient_url(group, stranger), headers=owner.auth)
    assert not_friend.status_code == 400 and not_friend.json()["code"] == "NOT_FRIENDS_WITH_USER"
    full = client.put(_recipient_url(group, late), headers=member.auth)
    assert full.status_code == 400 and full.json()["code"] == "MAX_GROUP_DM_RECIPIENTS"
    outsider = client.put(_recipient_url(group, stranger), headers=stranger.auth)
    assert outsider.status_code == 404 and outsider.json()["code"] == "UNKNOWN_CHANNEL"

    dm = _open(client, owner, member).json()["id"]
    in_dm = client.put(_recipient_url(dm, newcomer), headers=owner.auth)
    assert in_dm.status_code == 400 and in_dm.json()["code"] == "INVALID_CHANNEL_TYPE"
    guild = make_guild(owner)
    in_guild = client.put(_recipient_url(guild["system_channel_id"], member), headers=owner.auth)
    assert in_guild.status_code == 400 and in_guild.json()["code"] == "INVALID_CHANNEL_TYPE"


def test_removing_recipients_and_leaving(client, register, published):
    owner, first, second = register(), register(), register()
    _befriend(client, owner, first)
    _befriend(client, owner, second)
    group = _group(client, owner, first, second).json()["id"]
    message = _send(client, second, group, "hello all").json()
    published.clear()

    not_owner = client.delete(_recipient_url(group, second), headers=first.auth)
    assert not_owner.status_code == 403 and not_owner.json()["code"] == "MISSING_PERMISSIONS"
    assert client.delete(_recipient_url(group, second), headers=owner.auth).status_code == 204
    [deleted] = [e for e in published if e.name == "CHANNEL_DELETE"]
    assert deleted.user_ids == (int(second.user_id),) and deleted.data["id"] == group
    [removed] = [e for e in published if e.name == "CHANNEL_RECIPIENT_REMOVE"]
    assert sorted(removed.user_ids) == sorted([int(owner.user_id), int(first.user_id)])
    assert removed.data["user"]["id"] == second.user_id
    assert client.get(f"/v1/channels/{group}/messages", headers=second.auth).status_code == 404
    assert _listed(client, second) == []
    gone = client.delete(_recipient_url(group, second), headers=owner.auth)
    assert gone.status_code == 404 and gone.json()["code"] == "UNKNOWN_USER"

    published.clear()
    assert client.delete(_recipient_url(group, owner), headers=owner.auth).status_code == 204  # the owner leaves
    [updated] = [e for e in published if e.name == "CHANNEL_UPDATE"]
    assert updated.user_ids == (int(first.user_id),) and updated.data["owner_id"] == first.user_id
    channel = client.get(CHANNELS, headers=first.auth).json()[0]
    assert channel["owner_id"] == first.user_id and channel["recipients"] == []
    assert client.get(f"/v1/channels/{group}/messages/{message['id']}", headers=first.auth).status_code == 200

    assert client.delete(_recipient_url(group, first), headers=first.auth).status_code == 204  # the last one leaves
    assert _listed(client, first) == []
    assert client.get(f"/v1/channels/{group}/messages", headers=first.auth).status_code == 404
