"""Reactions on messages (openapi/reactions.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from service import reactions
from service.permissions import Permission

THUMBS = "\U0001f44d"  # 👍
HEART = "\u2764\ufe0f"  # ❤️
PNG_1X1 = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQ"
           "AAAAABJRU5ErkJggg==")


def _setup(client, register, make_guild, add_member, members: int = 1):
    owner = register()
    guild = make_guild(owner)
    others = [register() for _ in range(members)]
    for account in others:
        add_member(account, guild)
    channel = guild["system_channel_id"]
    message = client.post(f"/v1/channels/{channel}/messages", json={"content": "react to me"}, headers=owner.auth)
    assert message.status_code == 200, message.text
    return owner, others, guild, channel, message.json()["id"]


def _url(channel, message, emoji=None, *rest):
    base = f"/v1/channels/{channel}/messages/{message}/reactions"
    return "/".join([base, quote(emoji, safe=":"), *rest]) if emoji is not None else base


def _reactions(client, account, channel, message):
    response = client.get(f"/v1/channels/{channel}/messages/{message}", headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()["reactions"]


def _deny_everyone(client, owner, guild, channel, *permissions):
    response = client.put(f"/v1/channels/{channel}/permissions/{guild['id']}",
                          json={"type": 0, "deny": str(sum(int(p) for p in permissions))}, headers=owner.auth)
    assert response.status_code == 204, response.text


def _emoji(client, owner, guild, name):
    response = client.post(f"/v1/guilds/{guild['id']}/emojis", json={"name": name, "image": PNG_1X1},
                           headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_react_counts_me_and_events(client, register, make_guild, add_member, published):
    owner, (member, bystander), _guild, channel, message = _setup(client, register, make_guild, add_member, 2)
    # Percent-encoded by hand, as clients send it, and as the raw text (the client library encodes it).
    first = client.put(f"/v1/channels/{channel}/messages/{message}/reactions/%F0%9F%91%8D/@me", headers=member.auth)
    assert first.status_code == 204, first.text
    assert client.put(_url(channel, message, THUMBS, "@me"), headers=owner.auth).status_code == 204
    assert client.put(_url(channel, message, HEART, "@me"), headers=owner.auth).status_code == 204

    assert _reactions(client, member, channel, message) == [
        {"emoji": {"id": None, "name": THUMBS}, "count": 2, "me": True},
        {"emoji": {"id": None, "name": HEART}, "count": 1, "me": False},
    ]
    assert [(r["count"], r["me"]) for r in _reactions(client, bystander, channel, message)] == [(2, False), (1, False)]
    listed = client.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json()
    assert listed[0]["reactions"][0] == {"emoji": {"id": None, "name": THUMBS}, "count": 2, "me": True}

    added = [e for e in published if e.name == "MESSAGE_REACTION_ADD"]
    assert len(added) == 3 and all(e.channel_id == int(channel) for e in added)
    assert added[0].data["emoji"] == {"name": THUMBS} and added[0].data["user_id"] == member.user_id
    assert added[0].data["message_id"] == message and added[0].data["member"]["user"]["id"] == member.user_id

    # Reacting again changes nothing and says nothing.
    assert client.put(_url(channel, message, THUMBS, "@me"), headers=member.auth).status_code == 204
    assert _reactions(client, member, channel, message)[0]["count"] == 2
    assert len([e for e in published if e.name == "MESSAGE_REACTION_ADD"]) == 3


def test_session_id_is_echoed(client, register, make_guild, add_member, published):
    owner, _members, _guild, channel, message = _setup(client, register, make_guild, add_member, 0)
    assert client.put(_url(channel, message, THUMBS, "@me") + "?session_id=abc", headers=owner.auth).status_code == 204
    assert published[-1].data["session_id"] == "abc"


@pytest.mark.parametrize("text", ["abc", "hello world", "x", "\u20ac", "A\U0001f44d", "1", "\u00e9", "::", ":123",
                                  THUMBS * 33, "\ufe0f", "\u200d"])
def test_text_that_is_not_an_emoji_is_refused(client, register, make_guild, add_member, text):
    owner, _members, _guild, channel, message = _setup(client, register, make_guild, add_member, 0)
    response = client.put(_url(channel, message, text, "@me"), headers=owner.auth)
    assert response.status_code == 400, (text, response.text)
    assert _reactions(client, owner, channel, message) == []


@pytest.mark.parametrize("text", [THUMBS, HEART, "\U0001f468\u200d\U0001f469\u200d\U0001f467", "1\ufe0f\u20e3",
                                  "#\ufe0f\u20e3", "\U0001f1fa\U0001f1f8", "\U0001f44d\U0001f3fd", "\u2122\ufe0f",
                                  "\u203c\ufe0f", "\u2194\ufe0f", "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063"
                                  "\U000e0074\U000e007f"])
def test_plausible_emoji(text):
    assert reactions.plausible_unicode_emoji(text), text


def test_custom_emoji(client, register, make_guild, add_member, published):
    owner, (member,), guild, channel, message = _setup(client, register, make_guild, add_member)
    blob = _emoji(client, owner, guild, "blob")
    assert client.put(_url(channel, message, f"blob:{blob['id']}", "@me"), headers=member.auth).status_code == 204
    # The id decides: another name for the same id joins the same reaction.
    assert client.put(_url(channel, message, f"whatever:{blob['id']}", "@me"), headers=owner.auth).status_code == 204
    encoded = f"/v1/channels/{channel}/messages/{message}/reactions/blob%3A{blob['id']}/@me"  # ":" encoded works too
    assert client.put(encoded, headers=owner.auth).status_code == 204
    assert _reactions(client, owner, channel, message) == [
        {"emoji": {"id": blob["id"], "name": "blob"}, "count": 2, "me": True}]
    event = published[-1]
    assert event.name == "MESSAGE_REACTION_ADD"
    assert event.data["emoji"] == {"id": blob["id"], "name": "blob", "animated": False}

    users = client.get(_url(channel, message, f"blob:{blob['id']}"), headers=member.auth).json()
    assert sorted(u["id"] for u in users) == sorted([owner.user_id, member.user_id])
    unknown = client.put(_url(channel, message, "nope:123456789", "@me"), headers=member.auth)
    assert unknown.status_code == 400 and unknown.json()["errors"][0] == {
        "path": "emoji", "code": "UNKNOWN_EMOJI", "message": "Unknown emoji"}

    assert client.delete(_url(channel, message, f"blob:{blob['id']}", "@me"), headers=member.auth).status_code == 204
    assert _reactions(client, owner, channel, message)[0]["count"] == 1
    assert published[-1].name == "MESSAGE_REACTION_REMOVE"
    assert published[-1].data["emoji"] == {"id": blob["id"], "name": "blob"}


def test_external_emoji_needs_use_external_emojis(client, register, make_guild, add_member):
    owner, (member,), guild, channel, message = _setup(client, register, make_guild, add_member)
    elsewhere = make_guild(owner, "Elsewhere")
    star = _emoji(client, owner, elsewhere, "star")
    _deny_everyone(client, owner, guild, channel, Permission.USE_EXTERNAL_EMOJIS)
    denied = client.put(_url(channel, message, f"star:{star['id']}", "@me"), headers=member.auth)
    assert denied.status_code == 403 and denied.json()["code"] == "MISSING_PERMISSIONS"
    assert _reactions(client, owner, channel, message) == []
    local = _emoji(client, owner, guild, "local")  # the guild's own emoji need no such permission
    assert client.put(_url(channel, message, f"local:{local['id']}", "@me"), headers=member.auth).status_code == 204
    assert client.put(_url(channel, message, f"star:{star['id']}", "@me"), headers=owner.auth).status_code == 204
    assert [r["emoji"]["name"] for r in _reactions(client, owner, channel, message)] == ["local", "star"]


def test_new_emoji_needs_add_reactions_joining_does_not(client, register, make_guild, add_member):
    owner, (member,), guild, channel, message = _setup(client, register, make_guild, add_member)
    assert client.put(_url(channel, message, THUMBS, "@me"), headers=owner.auth).status_code == 204
    _deny_everyone(client, owner, guild, channel, Permission.ADD_REACTIONS)
    new = client.put(_url(channel, message, HEART, "@me"), headers=member.auth)
    assert new.status_code == 403 and new.json()["permissions"] == ["ADD_REACTIONS"]
    assert client.put(_url(channel, message, THUMBS, "@me"), headers=member.auth).status_code == 204
    assert _reactions(client, owner, channel, message) == [
        {"emoji": {"id": None, "name": THUMBS}, "count": 2, "me": True}]

    _deny_everyone(client, owner, guild, channel, Permission.READ_MESSAGE_HISTORY)
    blind = client.put(_url(channel, message, THUMBS, "@me"), headers=member.auth)
    assert blind.status_code == 403
    assert client.delete(_url(channel, message, THUMBS, "@me"), headers=member.auth).status_code == 403
    assert _reactions(client, owner, channel, message)[0]["count"] == 2


def test_strangers_and_hidden_channels_learn_nothing(client, register, make_guild, add_member, published):
    owner, (member,), guild, channel, message = _setup(client, register, make_guild, add_member)
    stranger = register()
    assert client.put(_url(channel, message, THUMBS, "@me"), headers=owner.auth).status_code == 204
    calls = [("PUT", _url(channel, message, THUMBS, "@me")), ("DELETE", _url(channel, message, THUMBS, "@me")),
             ("DELETE", _url(channel, message, THUMBS, owner.user_id)), ("GET", _url(channel, message, THUMBS)),
             ("GET", _url(channel, message, THUMBS, "users")), ("DELETE", _url(channel, message, THUMBS)),
             ("DELETE", _url(channel, message))]
    before = len(published)
    for method, url in calls:
        response = client.request(method, url, headers=stranger.auth)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["code"] == "UNKNOWN_CHANNEL" and owner.user_id not in response.text
    _deny_everyone(client, owner, guild, channel, Permission.VIEW_CHANNEL)
    for method, url in calls:
        response = client.request(method, url, headers=member.auth)
        assert response.status_code == 403 and response.json()["code"] == "MISSING_ACCESS", (method, url)
        assert owner.user_id not in response.text
    assert not [e for e in published[before:] if e.name.startswith("MESSAGE_REACTION")]
    assert _reactions(client, owner, channel, message)[0]["count"] == 1


def test_unknown_and_foreign_messages(client, register, make_guild, add_member):
    owner, _members, guild, channel, message = _setup(client, register, make_guild, add_member, 0)
    other_channel = client.post(f"/v1/guilds/{guild['id']}/channels", json={"type": 0, "name": "other"},
                                headers=owner.auth).json()["id"]
    for target_channel, target in ((channel, "123456"), (other_channel, message)):
        for method, url in (("PUT", _url(target_channel, target, THUMBS, "@me")),
                            ("GET", _url(target_channel, target, THUMBS)),
                            ("DELETE", _url(target_channel, target))):
            response = client.request(method, url, headers=owner.auth)
            assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_MESSAGE", (method, url)


def test_removing_reactions(client, register, make_guild, add_member, published):
    owner, (member, other), guild, channel, message = _setup(client, register, make_guild, add_member, 2)
    for account in (owner, member, other):
        assert client.put(_url(channel, message, THUMBS, "@me"), headers=account.auth).status_code == 204
    assert client.put(_url(channel, message, HEART, "@me"), headers=member.auth).status_code == 204

    # Someone else's reaction needs MANAGE_MESSAGES; one's own by id does not.
    denied = client.delete(_url(channel, message, THUMBS, other.user_id), headers=member.auth)
    assert denied.status_code == 403 and denied.json()["permissions"] == ["MANAGE_MESSAGES"]
    assert client.delete(_url(channel, message, THUMBS, member.user_id), headers=member.auth).status_code == 204
    assert published[-1].name == "MESSAGE_REACTION_REMOVE" and published[-1].data["user_id"] == member.user_id
    assert client.delete(_url(channel, message, THUMBS, other.user_id), headers=owner.auth).status_code == 204
    assert published[-1].data["user_id"] == other.user_id and published[-1].channel_id == int(channel)
    assert _reactions(client, owner, channel, message) == [
        {"emoji": {"id": None, "name": THUMBS}, "count": 1, "me": True},
        {"emoji": {"id": None, "name": HEART}, "count": 1, "me": False}]
    # Removing what is not there is fine and silent.
    count = len(published)
    assert client.delete(_url(channel, message, THUMBS, "@me"), headers=other.auth).status_code == 204
    assert client.delete(_url(channel, message, "not an emoji", "@me"), headers=other.auth).status_code == 204
    assert len(published) == count

    for url in (_url(channel, message, THUMBS), _url(channel, message)):
        response = client.delete(url, headers=member.auth)
        assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"
    assert len(_reactions(client, owner, channel, message)) == 2

    assert client.delete(_url(channel, message, THUMBS), headers=owner.auth).status_code == 204
    assert published[-1].name == "MESSAGE_REACTION_REMOVE_EMOJI"
    assert published[-1].data == {"channel_id": channel, "message_id": message, "guild_id": guild["id"],
                                  "emoji": {"name": THUMBS}}
    assert [r["emoji"]["name"] for r in _reactions(client, owner, channel, message)] == [HEART]
    assert client.delete(_url(channel, message), headers=owner.auth).status_code == 204
    assert published[-1].name == "MESSAGE_REACTION_REMOVE_ALL" and published[-1].channel_id == int(channel)
    assert _reactions(client, owner, channel, message) == []


def test_listing_users_pages_by_id(client, register, make_guild, add_member):
    owner, others, _guild, channel, message = _setup(client, register, make_guild, add_member, 4)
    for account in [owner, *others]:
        assert client.put(_url(channel, message, THUMBS, "@me"), headers=account.auth).status_code == 204
    ids = sorted((a.user_id for a in [owner, *others]), key=int)
    url = _url(channel, message, THUMBS)
    assert [u["id"] for u in client.get(url, headers=owner.auth).json()] == ids
    assert [u["id"] for u in client.get(f"{url}?limit=2", headers=owner.auth).json()] == ids[:2]
    assert [u["id"] for u in client.get(f"{url}?limit=2&after={ids[1]}", headers=owner.auth).json()] == ids[2:4]
    page = client.get(f"{url}/users?limit=3", headers=owner.auth).json()
    assert [u["id"] for u in page["items"]] == ids[:3] and page["has_more"] is True and page["next_after"] == ids[2]
    last = client.get(f"{url}/users?limit=3&after={page['next_after']}", headers=owner.auth).json()
    assert [u["id"] for u in last["items"]] == ids[3:] and last["has_more"] is False and last["next_after"] is None
    assert "email" not in client.get(url, headers=owner.auth).text
    for bad in ("limit=0", "limit=101", "after=abc"):
        assert client.get(f"{url}?{bad}", headers=owner.auth).status_code == 400, bad
    assert client.get(_url(channel, message, HEART), headers=owner.auth).json() == []
    assert client.get(_url(channel, message, "nonsense"), headers=owner.auth).json() == []


def test_at_most_so_many_emoji_per_message(client, register, make_guild, add_member, monkeypatch):
    monkeypatch.setattr(reactions, "MAX_REACTIONS", 2)
    owner, (member,), _guild, channel, message = _setup(client, register, make_guild, add_member)
    assert client.put(_url(channel, message, THUMBS, "@me"), headers=owner.auth).status_code == 204
    assert client.put(_url(channel, message, HEART, "@me"), headers=owner.auth).status_code == 204
    third = client.put(_url(channel, message, "\U0001f389", "@me"), headers=member.auth)
    assert third.status_code == 400 and third.json()["code"] == "MAX_REACTIONS" and third.json()["max"] == 2
    assert client.put(_url(channel, message, HEART, "@me"), headers=member.auth).status_code == 204  # joining is fine
    assert [r["count"] for r in _reactions(client, owner, channel, message)] == [1, 2]


def test_timed_out_members_cannot_react(client, register, make_guild, add_member):
    owner, (member,), guild, channel, message = _setup(client, register, make_guild, add_member)
    assert client.put(_url(channel, message, THUMBS, "@me"), headers=member.auth).status_code == 204
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = client.patch(f"/v1/guilds/{guild['id']}/members/{member.user_id}",
                            json={"communication_disabled_until": until}, headers=owner.auth)
    assert response.status_code == 200, response.text
    assert client.put(_url(channel, message, THUMBS, "@me"), headers=owner.auth).status_code == 204
    blocked = client.put(_url(channel, message, HEART, "@me"), headers=member.auth)
    assert blocked.status_code == 403 and blocked.json()["code"] == "COMMUNICATION_DISABLED"
    # Taking back a reaction is still allowed.
    assert client.delete(_url(channel, message, THUMBS, "@me"), headers=member.auth).status_code == 204
    assert _reactions(client, owner, channel, message) == [
        {"emoji": {"id": None, "name": THUMBS}, "count": 1, "me": True}]
