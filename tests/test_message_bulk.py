"""Messages in bulk (openapi/message_bulk.yaml), a ban's message clean-up, and the slowmode state."""

from __future__ import annotations

from datetime import timedelta

from service.models import utcnow
from service.permissions import Permission
from tests.conftest import PASSWORD

BULK = "/v1/channels/messages/bulk"
SEED = "/v1/test/messages/seed"
SUDO = {"password": PASSWORD}


def _send(client, account, channel_id, content: str) -> str:
    response = client.post(f"/v1/channels/{channel_id}/messages", json={"content": content}, headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _seed(client, channel_id, author, *ages: timedelta) -> list[str]:
    """Messages by ``author`` written ``ages`` ago, straight into the channel (no events)."""
    now = utcnow()
    items = [{"timestamp": (now - age).isoformat(), "content": f"seeded {n}"} for n, age in enumerate(ages)]
    response = client.post(SEED, json={"channel_id": channel_id, "author_id": author.user_id, "messages": items})
    assert response.status_code == 200, response.text
    return [m["message_id"] for m in response.json()["messages"]]


def _history(client, account, channel_id) -> list[str]:
    response = client.get(f"/v1/channels/{channel_id}/messages?limit=100", headers=account.auth)
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()]


def _text_channel(client, owner, guild, name: str) -> str:
    response = client.post(f"/v1/guilds/{guild['id']}/channels", json={"name": name, "type": 0}, headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _bulk_deletes(published) -> list:
    return [e for e in published if e.name == "MESSAGE_DELETE_BULK"]


def _delete_mine_in_channel(client, account, channel_id, body=None, headers=None):
    return client.post(f"/v1/channels/{channel_id}/messages/bulk-delete-mine", json=SUDO if body is None else body,
                       headers=headers or account.auth)


# --- Reading several channels ---------------------------------------------------------------


def test_bulk_read_answers_each_window_in_request_order(client, register, make_guild, add_member):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    general, other = guild["system_channel_id"], _text_channel(client, owner, guild, "other")
    general_ids = [_send(client, owner, general, f"g{n}") for n in range(5)]
    other_ids = [_send(client, member, other, f"o{n}") for n in range(3)]

    response = client.post(BULK, headers=member.auth, json={"requests": [
        {"channel_id": other, "limit": 25},
        {"channel_id": general, "limit": 2, "before": general_ids[3]},
        {"channel_id": int(general), "limit": 3},
    ]})
    assert response.status_code == 200, response.text
    windows = response.json()["channels"]
    assert [w["channel_id"] for w in windows] == [other, general, general]
    assert [m["id"] for m in windows[0]["messages"]] == other_ids[::-1]
    assert [m["id"] for m in windows[1]["messages"]] == [general_ids[2], general_ids[1]]
    assert [m["id"] for m in windows[2]["messages"]] == general_ids[:1:-1]
    assert windows[0]["messages"][0]["author"]["id"] == member.user_id and windows[0]["messages"][0]["content"] == "o2"


def test_bulk_read_never_shows_a_stranger_anything(client, register, make_guild, add_member):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    secret = guild["system_channel_id"]
    _send(client, owner, secret, "secret plans")
    own_channel = make_guild(stranger)["system_channel_id"]
    _send(client, stranger, own_channel, "my own words")

    # One unreadable channel fails the whole call: not even the stranger's own channel is answered.
    refused = client.post(BULK, headers=stranger.auth, json={"requests": [
        {"channel_id": own_channel, "limit": 5}, {"channel_id": secret, "limit": 5}]})
    assert refused.status_code == 404 and refused.json()["code"] == "UNKNOWN_CHANNEL"
    assert "secret" not in refused.text and "my own words" not in refused.text
    unknown = client.post(BULK, headers=member.auth, json={"requests": [{"channel_id": "99999999999999999", "limit": 5}]})
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_CHANNEL"

    # A member who sees the channel but may not read its history gets the same 403 as the single read.
    client.put(f"/v1/channels/{secret}/permissions/{guild['id']}",
               json={"type": 0, "deny": str(int(Permission.READ_MESSAGE_HISTORY))}, headers=owner.auth)
    blind = client.post(BULK, headers=member.auth, json={"requests": [{"channel_id": secret, "limit": 5}]})
    assert blind.status_code == 403 and blind.json()["code"] == "MISSING_PERMISSIONS"
    assert "secret" not in blind.text


def test_bulk_read_limits(client, register, make_guild, app):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    one = {"channel_id": channel, "limit": 1}
    assert client.post(BULK, headers=owner.auth, json={"requests": []}).status_code == 400
    assert client.post(BULK, headers=owner.auth, json={"requests": [one] * 26}).status_code == 400
    assert client.post(BULK, headers=owner.auth, json={"requests": [{**one, "limit": 26}]}).status_code == 400
    assert client.post(BULK, headers=owner.auth, json={"requests": [{**one, "limit": 25}] * 10}).status_code == 200

    too_many = client.post(BULK, headers=owner.auth, json={"requests": [{**one, "limit": 25}] * 10 + [one]})
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["path"] == "requests"
    two_cursors = client.post(BULK, headers=owner.auth,
                              json={"requests": [one, {**one, "before": "5", "after": "1"}]})
    assert two_cursors.status_code == 400
    assert two_cursors.json()["errors"][0]["path"] == "requests.1.before"

    application = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Reader"}).json()
    bot = client.post(BULK, headers={"Authorization": f"Bot {application['bot']['token']}"}, json={"requests": [one]})
    assert bot.status_code == 401  # people only, as upstream


# --- Deleting one's own messages ------------------------------------------------------------


def test_delete_mine_in_channel(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    general, other = guild["system_channel_id"], _text_channel(client, owner, guild, "other")
    mine = [_send(client, member, general, f"mine {n}") for n in range(3)]
    theirs = _send(client, owner, general, "the owner's")
    elsewhere = _send(client, member, other, "mine, elsewhere")

    no_password = _delete_mine_in_channel(client, member, general, body={})
    assert no_password.status_code == 403 and no_password.json()["code"] == "SUDO_MODE_REQUIRED"
    wrong = _delete_mine_in_channel(client, member, general, body={"password": "not my password"})
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["code"] == "INVALID_PASSWORD"
    assert set(mine) <= set(_history(client, owner, general))
    published.clear()

    assert _delete_mine_in_channel(client, member, general).status_code == 204
    assert _history(client, owner, general) == [theirs]
    assert _history(client, owner, other) == [elsewhere]
    [event] = _bulk_deletes(published)
    assert event.channel_id == int(general) and event.guild_id == int(guild["id"])
    assert event.data == {"ids": sorted(mine, key=int), "channel_id": general, "guild_id": guild["id"]}


def test_delete_mine_refuses_strangers_and_works_in_dms(client, register, make_guild, published):
    owner, stranger, friend = register(), register(), register()
    guild = make_guild(owner)
    general = guild["system_channel_id"]
    kept = _send(client, owner, general, "owner's words")
    refused = _delete_mine_in_channel(client, stranger, general)
    assert refused.status_code == 404 and refused.json()["code"] == "UNKNOWN_CHANNEL"
    assert _history(client, owner, general) == [kept]

    assert client.put(f"/v1/users/@me/relationships/{friend.user_id}", headers=owner.auth).status_code == 200
    dm = client.post("/v1/users/@me/channels", json={"recipient_id": friend.user_id}, headers=owner.auth).json()["id"]
    _send(client, owner, dm, "to be forgotten")
    reply = _send(client, friend, dm, "a reply")
    published.clear()
    assert _delete_mine_in_channel(client, owner, dm).status_code == 204
    assert _history(client, friend, dm) == [reply]
    [event] = _bulk_deletes(published)
    assert event.channel_id == int(dm) and event.data["guild_id"] is None


def test_delete_mine_goes_in_batches(client, register, make_guild, published):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    seeded = _seed(client, channel, owner, *[timedelta(minutes=n + 1) for n in range(250)])
    # Stands in for a message sent while the deletion runs: only what came before the call goes.
    later = _seed(client, channel, owner, -timedelta(hours=1))
    published.clear()
    assert _delete_mine_in_channel(client, owner, channel).status_code == 204
    assert _history(client, owner, channel) == later
    sizes = [len(e.data["ids"]) for e in _bulk_deletes(published)]
    assert sorted(sizes) == [50, 100, 100]  # one transaction per 100
    assert sorted(i for e in _bulk_deletes(published) for i in e.data["ids"]) == sorted(seeded)


def test_a_bot_deletes_its_messages_without_sudo(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = guild["system_channel_id"]
    application = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Chatty Bot"}).json()
    consent = client.post("/v1/oauth2/authorize/consent", headers=owner.auth,
                          json={"client_id": application["id"], "scope": "bot", "permissions": "0",
                                "guild_id": guild["id"]})
    assert consent.status_code == 200, consent.text
    bot = {"Authorization": f"Bot {application['bot']['token']}"}
    sent = client.post(f"/v1/channels/{channel}/messages", json={"content": "beep"}, headers=bot)
    assert sent.status_code == 200, sent.text
    kept = _send(client, owner, channel, "human words")

    response = client.post(f"/v1/channels/{channel}/messages/bulk-delete-mine", json={}, headers=bot)
    assert response.status_code == 204, response.text
    assert _history(client, owner, channel) == [kept]


def test_delete_mine_in_guild(client, register, make_guild, add_member, published):
    owner, member, stranger = register(), register(), register()
    guild, elsewhere = make_guild(owner), make_guild(owner, name="Elsewhere")
    add_member(member, guild)
    add_member(member, elsewhere)
    general, hidden = guild["system_channel_id"], _text_channel(client, owner, guild, "hidden")
    in_general = _send(client, member, general, "one")
    in_hidden = _send(client, member, hidden, "two")
    theirs = _send(client, owner, general, "the owner's")
    other_guild = _send(client, member, elsewhere["system_channel_id"], "somewhere else")
    # The member no longer sees #hidden; what they wrote there is still theirs to delete.
    client.put(f"/v1/channels/{hidden}/permissions/{guild['id']}",
               json={"type": 0, "deny": str(int(Permission.VIEW_CHANNEL))}, headers=owner.auth)

    url = f"/v1/users/@me/guilds/{guild['id']}/messages/bulk-delete-mine"
    refused = client.post(url, json=SUDO, headers=stranger.auth)
    assert refused.status_code == 404 and refused.json()["code"] == "UNKNOWN_GUILD"
    assert client.post(url, json={}, headers=member.auth).status_code == 403
    published.clear()
    assert client.post(url, json=SUDO, headers=member.auth).status_code == 204

    assert _history(client, owner, general) == [theirs]
    assert _history(client, owner, hidden) == []
    assert _history(client, owner, elsewhere["system_channel_id"]) == [other_guild]
    deleted = {e.channel_id: e.data["ids"] for e in _bulk_deletes(published)}
    assert deleted == {int(general): [in_general], int(hidden): [in_hidden]}


def test_delete_mine_everywhere_with_filters(client, register, make_guild, add_member):
    me, friend, owner = register(), register(), register()
    kept_guild, cleared_guild = make_guild(owner, name="Kept"), make_guild(owner, name="Cleared")
    add_member(me, kept_guild)
    add_member(me, cleared_guild)
    assert client.put(f"/v1/users/@me/relationships/{friend.user_id}", headers=me.auth).status_code == 200
    dm = client.post("/v1/users/@me/channels", json={"recipient_id": friend.user_id}, headers=me.auth).json()["id"]
    in_dm = _send(client, me, dm, "private")
    in_kept = _send(client, me, kept_guild["system_channel_id"], "stays")
    cleared_channel = cleared_guild["system_channel_id"]
    [old] = _seed(client, cleared_channel, me, timedelta(days=30))
    _send(client, me, cleared_channel, "recent")

    url = "/v1/users/@me/messages/bulk-delete-mine"
    body = {**SUDO, "include_dms": False, "include_group_dms": False, "guild_filter_mode": "exclude",
            "excluded_guild_ids": [kept_guild["id"]], "start_date": (utcnow() - timedelta(days=1)).isoformat()}
    assert client.post(url, json=body, headers=me.auth).status_code == 204
    assert _history(client, owner, cleared_channel) == [old]  # before start_date
    assert _history(client, owner, kept_guild["system_channel_id"]) == [in_kept]
    assert _history(client, friend, dm) == [in_dm]

    # With the defaults everything goes: DMs and every guild the caller is in.
    assert client.post(url, json=SUDO, headers=me.auth).status_code == 204
    assert _history(client, friend, dm) == []
    assert _history(client, owner, kept_guild["system_channel_id"]) == []
    assert _history(client, owner, cleared_channel) == []


def test_delete_mine_in_places_left_behind(client, register, make_guild, add_member):
    me, owner = register(), register()
    left, stayed = make_guild(owner, name="Left"), make_guild(owner, name="Stayed")
    add_member(me, left)
    add_member(me, stayed)
    _send(client, me, left["system_channel_id"], "before I left")
    still_here = _send(client, me, stayed["system_channel_id"], "still here")
    assert client.delete(f"/v1/users/@me/guilds/{left['id']}", headers=me.auth).status_code == 204

    url = "/v1/users/@me/messages/bulk-delete-mine"
    assert client.post(url, json={**SUDO, "scope": "inaccessible_only"}, headers=me.auth).status_code == 204
    assert _history(client, owner, left["system_channel_id"]) == []
    assert _history(client, owner, stayed["system_channel_id"]) == [still_here]


def test_delete_mine_everywhere_validation(client, register, make_guild):
    me = register()
    channel = make_guild(me)["system_channel_id"]
    kept = _send(client, me, channel, "kept")
    url = "/v1/users/@me/messages/bulk-delete-mine"
    nothing = {**SUDO, "include_dms": False, "include_dms_closed": False, "include_group_dms": False,
               "include_guilds": False}
    refused = client.post(url, json=nothing, headers=me.auth)
    assert refused.status_code == 400 and refused.json()["errors"][0]["path"] == "include_dms"
    backwards = client.post(url, headers=me.auth, json={**SUDO, "start_date": "2026-02-01T00:00:00Z",
                                                        "end_date": "2026-01-01T00:00:00Z"})
    assert backwards.status_code == 400 and backwards.json()["errors"][0]["path"] == "end_date"
    assert client.post(url, json={}, headers=me.auth).json()["code"] == "SUDO_MODE_REQUIRED"
    assert _history(client, me, channel) == [kept]


# --- A ban's clean-up -----------------------------------------------------------------------


def test_ban_deletes_the_recent_messages_only(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    general, other = guild["system_channel_id"], _text_channel(client, owner, guild, "other")
    recent = [_send(client, member, general, "spam"), _send(client, member, other, "more spam")]
    [old_general] = _seed(client, general, member, timedelta(hours=2))
    [old_other] = _seed(client, other, member, timedelta(days=3))
    theirs = _send(client, owner, general, "the owner's")
    published.clear()

    response = client.put(f"/v1/guilds/{guild['id']}/bans/{member.user_id}", json={"delete_message_seconds": 3600},
                          headers=owner.auth)
    assert response.status_code == 204, response.text
    assert _history(client, owner, general) == [theirs, old_general]
    assert _history(client, owner, other) == [old_other]
    names = [e.name for e in published]
    assert names.index("GUILD_BAN_ADD") < names.index("MESSAGE_DELETE_BULK")
    assert {e.channel_id: e.data["ids"] for e in _bulk_deletes(published)} == {
        int(general): [recent[0]], int(other): [recent[1]]}


def test_ban_delete_message_days_and_no_window(client, register, make_guild, add_member):
    owner, member, other_member = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    add_member(other_member, guild)
    channel = guild["system_channel_id"]
    _send(client, member, channel, "today")
    [two_days_old] = _seed(client, channel, member, timedelta(days=2))
    assert client.put(f"/v1/guilds/{guild['id']}/bans/{member.user_id}", json={"delete_message_days": 1},
                      headers=owner.auth).status_code == 204
    assert _history(client, owner, channel) == [two_days_old]

    # Without a window nothing is deleted.
    kept = _send(client, other_member, channel, "still here")
    assert client.put(f"/v1/guilds/{guild['id']}/bans/{other_member.user_id}", json={"reason": "bye"},
                      headers=owner.auth).status_code == 204
    assert _history(client, owner, channel) == [kept, two_days_old]


# --- Slowmode state -------------------------------------------------------------------------


def test_slowmode_state(client, register, make_guild, add_member):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = guild["system_channel_id"]
    url = f"/v1/channels/{channel}/slowmode"
    assert client.get(url, headers=member.auth).json() == {
        "rate_limit_per_user": 0, "retry_after_ms": 0, "next_send_allowed_at": None, "can_bypass": False}

    client.patch(f"/v1/channels/{channel}", json={"rate_limit_per_user": 60}, headers=owner.auth)
    before = client.get(url, headers=member.auth).json()
    assert before["rate_limit_per_user"] == 60 and before["retry_after_ms"] == 0
    _send(client, member, channel, "one")
    waiting = client.get(url, headers=member.auth).json()
    assert 0 < waiting["retry_after_ms"] <= 60_000 and waiting["next_send_allowed_at"] is not None
    assert waiting["can_bypass"] is False

    _send(client, owner, channel, "owner")
    owner_state = client.get(url, headers=owner.auth).json()
    assert owner_state["can_bypass"] is True and owner_state["retry_after_ms"] == 0

    refused = client.get(url, headers=stranger.auth)
    assert refused.status_code == 404 and refused.json()["code"] == "UNKNOWN_CHANNEL"
