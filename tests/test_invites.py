"""Invites (openapi/invites.yaml): create, list, look up, accept, delete, and the race for the last use."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from service import invites
from service.auth import Identity
from service.errors import APIError
from service.models import Guild, Invite, Member, utcnow
from service.permissions import Permission

CREATE = int(Permission.CREATE_INSTANT_INVITE)


# --- helpers -------------------------------------------------------------------------------


def _invite(client, account, channel_id, body=None, expect=200) -> dict:
    kwargs = {} if body is None else {"json": body}
    response = client.post(f"/v1/channels/{channel_id}/invites", headers=account.auth, **kwargs)
    assert response.status_code == expect, response.text
    return response.json()


def _accept(client, account, code):
    return client.post(f"/v1/invites/{code}", headers=account.auth)


def _joined(client, account, guild) -> bool:
    return client.get(f"/v1/guilds/{guild['id']}", headers=account.auth).status_code == 200


def _member(client, account, guild, owner) -> None:
    code = _invite(client, owner, guild["system_channel_id"], {"max_age": 0})["code"]
    assert _accept(client, account, code).status_code == 200


def _grant(client, owner, guild, account, permissions: int) -> dict:
    """Give ``account`` (a member) a new role carrying ``permissions``."""
    role = client.post(f"/v1/guilds/{guild['id']}/roles", headers=owner.auth,
                       json={"name": "Helpers", "permissions": str(permissions)})
    assert role.status_code == 200, role.text
    added = client.put(f"/v1/guilds/{guild['id']}/members/{account.user_id}/roles/{role.json()['id']}",
                       headers=owner.auth)
    assert added.status_code == 204, added.text
    return role.json()


def _audit(client, owner, guild, action: int) -> list[dict]:
    response = client.get(f"/v1/guilds/{guild['id']}/audit-logs?action_type={action}", headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()["audit_log_entries"]


def _set_invite(app, code, **values) -> None:
    with app.runtime.db.engine.begin() as connection:
        connection.execute(update(Invite).where(Invite.code == code).values(**values))


class _Session:
    """A session of its own, outside any request, to read what the database holds."""

    def __init__(self, app):
        self.session = app.runtime.db.session.session_factory()

    def __enter__(self):
        return self.session

    def __exit__(self, *exc):
        self.session.close()


def _uses(app, code) -> int:
    with _Session(app) as s:
        return s.scalar(select(Invite.uses).where(Invite.code == code))


def _member_count(app, guild_id) -> int:
    with _Session(app) as s:
        return s.scalar(select(Guild.member_count).where(Guild.id == int(guild_id)))


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- creating ------------------------------------------------------------------------------


def test_create_answers_the_invite_with_its_settings(client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    channel_id = guild["system_channel_id"]
    published.clear()

    invite = _invite(client, owner, channel_id)
    assert re.fullmatch(r"[A-Za-z0-9]{8,10}", invite["code"])
    assert invite["type"] == 0
    assert invite["guild"]["id"] == guild["id"] and invite["guild"]["name"] == guild["name"]
    assert invite["guild"]["features"] == []
    assert invite["channel"] == {"id": channel_id, "name": "general", "type": 0}
    assert invite["inviter"]["id"] == owner.user_id and "email" not in invite["inviter"]
    assert invite["member_count"] == 1 and invite["presence_count"] == 0
    assert invite["uses"] == 0 and invite["max_uses"] == 0 and invite["max_age"] == 86400
    assert invite["temporary"] is False
    lifetime = _when(invite["expires_at"]) - _when(invite["created_at"])
    assert lifetime == timedelta(days=1)

    entries = _audit(client, owner, guild, 40)
    assert len(entries) == 1 and entries[0]["user_id"] == owner.user_id
    assert {c["key"]: c["new_value"] for c in entries[0]["changes"]}["code"] == invite["code"]

    created = [e for e in published if e.name == "INVITE_CREATE"]
    assert len(created) == 1
    assert created[0].data["code"] == invite["code"] and created[0].data["uses"] == 0
    assert created[0].guild_id == int(guild["id"]) and created[0].channel_id == int(channel_id)


def test_never_expiring_limited_temporary_invite(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"max_age": 0, "max_uses": 5, "temporary": True})
    assert invite["expires_at"] is None and invite["max_age"] == 0
    assert invite["max_uses"] == 5 and invite["temporary"] is True


def test_equal_invite_is_reused_unless_unique(client, register, make_guild, published):
    owner, other = register(), register()
    guild = make_guild(owner)
    _member(client, other, guild, owner)
    channel_id = guild["system_channel_id"]
    first = _invite(client, owner, channel_id, {"max_age": 3600})
    published.clear()

    assert _invite(client, owner, channel_id, {"max_age": 3600})["code"] == first["code"]
    assert _invite(client, owner, channel_id, {"max_age": 3600, "unique": False})["code"] == first["code"]
    assert not [e for e in published if e.name == "INVITE_CREATE"]  # nothing new, nothing announced

    assert _invite(client, owner, channel_id, {"max_age": 3600, "unique": True})["code"] != first["code"]
    assert _invite(client, owner, channel_id, {"max_age": 7200})["code"] != first["code"]
    assert _invite(client, other, channel_id, {"max_age": 3600})["code"] != first["code"]  # not someone else's
    assert len(_audit(client, owner, guild, 40)) == 5


def test_create_validates_the_body_and_the_channel(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel_id = guild["system_channel_id"]
    for body in ({"max_age": 604801}, {"max_age": -1}, {"max_uses": 101}, {"temporary": "yes"}):
        response = client.post(f"/v1/channels/{channel_id}/invites", headers=owner.auth, json=body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "INVALID_FORM_BODY"
    category = next(c for c in guild["channels"] if c["type"] == 4)
    response = client.post(f"/v1/channels/{category['id']}/invites", headers=owner.auth, json={})
    assert response.status_code == 400 and response.json()["code"] == "INVALID_CHANNEL_TYPE"
    voice = next(c for c in guild["channels"] if c["type"] == 2)
    assert _invite(client, owner, voice["id"], {})["channel"]["type"] == 2
    unknown = client.post("/v1/channels/1234567890123/invites", headers=owner.auth, json={})
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_CHANNEL"


def test_create_needs_create_instant_invite(client, register, make_guild):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    _member(client, member, guild, owner)
    channel_id = guild["system_channel_id"]

    response = client.post(f"/v1/channels/{channel_id}/invites", headers=stranger.auth, json={})
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_CHANNEL"

    assert _invite(client, member, channel_id, {})["inviter"]["id"] == member.user_id  # @everyone may
    denied = client.put(f"/v1/channels/{channel_id}/permissions/{guild['id']}", headers=owner.auth,
                        json={"type": 0, "deny": str(CREATE)})
    assert denied.status_code == 204, denied.text
    response = client.post(f"/v1/channels/{channel_id}/invites", headers=member.auth, json={"unique": True})
    assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"
    assert _invite(client, owner, channel_id, {"unique": True})["code"]  # the owner has every permission


def test_invites_disabled(client, register, make_guild):
    owner, member, outsider = register(), register(), register()
    guild = make_guild(owner)
    _member(client, member, guild, owner)
    channel_id = guild["system_channel_id"]
    earlier = _invite(client, owner, channel_id, {"max_age": 0})
    patched = client.patch(f"/v1/guilds/{guild['id']}", headers=owner.auth, json={"features": ["INVITES_DISABLED"]})
    assert patched.status_code == 200, patched.text

    response = client.post(f"/v1/channels/{channel_id}/invites", headers=member.auth, json={})
    assert response.status_code == 403 and response.json()["code"] == "INVITES_DISABLED"
    assert _invite(client, owner, channel_id, {"unique": True})["code"]  # MANAGE_GUILD still may

    response = _accept(client, outsider, earlier["code"])
    assert response.status_code == 403 and response.json()["code"] == "INVITES_DISABLED"
    assert not _joined(client, outsider, guild)
    assert client.get(f"/v1/invites/{earlier['code']}").json()["guild"]["features"] == ["INVITES_DISABLED"]


def test_max_invites_per_guild(client, register, make_guild, monkeypatch):
    monkeypatch.setattr(invites, "MAX_INVITES", 2)
    owner = register()
    guild = make_guild(owner)
    channel_id = guild["system_channel_id"]
    _invite(client, owner, channel_id, {"unique": True})
    _invite(client, owner, channel_id, {"unique": True})
    response = client.post(f"/v1/channels/{channel_id}/invites", headers=owner.auth, json={"unique": True})
    assert response.status_code == 400 and response.json()["code"] == "MAX_INVITES"


# --- reading -------------------------------------------------------------------------------


def test_get_invite_needs_no_token(client, register, make_guild):
    owner, someone = register(), register()
    guild = make_guild(owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"max_uses": 3})

    anonymous = client.get(f"/v1/invites/{invite['code']}")
    assert anonymous.status_code == 200, anonymous.text
    shown = anonymous.json()
    assert shown["code"] == invite["code"] and shown["guild"]["id"] == guild["id"]
    assert shown["channel"]["id"] == guild["system_channel_id"]
    assert shown["inviter"]["id"] == owner.user_id
    assert shown["member_count"] == 1 and shown["presence_count"] == 0
    assert shown["expires_at"] == invite["expires_at"] and shown["temporary"] is False
    assert "uses" not in shown and "max_uses" not in shown  # the use count is for the guild's managers

    assert client.get(f"/v1/invites/{invite['code']}", headers=someone.auth).json() == shown
    missing = client.get("/v1/invites/nope12345")
    assert missing.status_code == 404 and missing.json()["code"] == "UNKNOWN_INVITE"


def test_list_channel_invites_needs_manage_channels(client, register, make_guild):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    _member(client, member, guild, owner)
    channel_id = guild["system_channel_id"]
    voice = next(c for c in guild["channels"] if c["type"] == 2)
    first = _invite(client, owner, channel_id, {"unique": True})
    second = _invite(client, member, channel_id, {"unique": True})
    elsewhere = _invite(client, owner, voice["id"], {"unique": True})

    response = client.get(f"/v1/channels/{channel_id}/invites", headers=stranger.auth)
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_CHANNEL"
    response = client.get(f"/v1/channels/{channel_id}/invites", headers=member.auth)
    assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"

    _grant(client, owner, guild, member, Permission.MANAGE_CHANNELS)
    response = client.get(f"/v1/channels/{channel_id}/invites", headers=member.auth)
    assert response.status_code == 200, response.text
    listed = response.json()
    codes = [i["code"] for i in listed]  # oldest first; the one that let ``member`` in comes first
    assert codes[1:] == [first["code"], second["code"]] and elsewhere["code"] not in codes
    assert {i["channel"]["id"] for i in listed} == {channel_id}
    assert listed[1]["uses"] == 0 and listed[1]["max_age"] == 86400 and "created_at" in listed[1]


def test_list_guild_invites_needs_manage_guild(client, register, make_guild):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    _member(client, member, guild, owner)
    voice = next(c for c in guild["channels"] if c["type"] == 2)
    codes = {_invite(client, owner, guild["system_channel_id"], {"max_age": 0})["code"],
             _invite(client, owner, voice["id"], {})["code"]}

    response = client.get(f"/v1/guilds/{guild['id']}/invites", headers=stranger.auth)
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_GUILD"
    response = client.get(f"/v1/guilds/{guild['id']}/invites", headers=member.auth)
    assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"

    _grant(client, owner, guild, member, Permission.MANAGE_GUILD)
    response = client.get(f"/v1/guilds/{guild['id']}/invites", headers=member.auth)
    assert response.status_code == 200, response.text
    assert {i["code"] for i in response.json()} == codes


# --- accepting -----------------------------------------------------------------------------


def test_accept_joins_the_guild(client, app, register, make_guild, published):
    owner, joiner = register(), register()
    guild = make_guild(owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"max_uses": 5})
    assert not _joined(client, joiner, guild)
    published.clear()

    response = _accept(client, joiner, invite["code"])
    assert response.status_code == 200, response.text
    assert response.json()["code"] == invite["code"] and response.json()["member_count"] == 2
    assert _joined(client, joiner, guild)
    assert _uses(app, invite["code"]) == 1

    added = [e for e in published if e.name == "GUILD_MEMBER_ADD"]
    assert len(added) == 1 and added[0].guild_id == int(guild["id"])
    assert added[0].data["user"]["id"] == joiner.user_id and added[0].data["guild_id"] == guild["id"]
    created = [e for e in published if e.name == "GUILD_CREATE"]
    assert len(created) == 1 and created[0].user_ids == (int(joiner.user_id),)
    assert created[0].data["id"] == guild["id"] and created[0].data["member_count"] == 2
    assert {c["id"] for c in created[0].data["channels"]} >= {guild["system_channel_id"]}

    with _Session(app) as s:
        member = s.get(Member, (int(guild["id"]), int(joiner.user_id)))
        assert member.join_invite_code == invite["code"] and member.temporary is False

    # Accepting again changes nothing and spends no use.
    published.clear()
    again = _accept(client, joiner, invite["code"])
    assert again.status_code == 200 and again.json()["member_count"] == 2
    assert _uses(app, invite["code"]) == 1 and not published
    listed = client.get(f"/v1/guilds/{guild['id']}/invites", headers=owner.auth).json()
    assert listed[0]["uses"] == 1


def test_temporary_invite_makes_temporary_members(client, app, register, make_guild):
    owner, joiner = register(), register()
    guild = make_guild(owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"temporary": True})
    assert _accept(client, joiner, invite["code"]).status_code == 200
    with _Session(app) as s:
        assert s.get(Member, (int(guild["id"]), int(joiner.user_id))).temporary is True


def test_used_up_invite_is_unknown(client, app, register, make_guild):
    owner, first, second = register(), register(), register()
    guild = make_guild(owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"max_uses": 1})
    assert _accept(client, first, invite["code"]).status_code == 200

    response = _accept(client, second, invite["code"])
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_INVITE"
    assert not _joined(client, second, guild)
    assert client.get(f"/v1/invites/{invite['code']}").status_code == 404
    assert client.get(f"/v1/guilds/{guild['id']}/invites", headers=owner.auth).json() == []
    assert _uses(app, invite["code"]) == 1 and _member_count(app, guild["id"]) == 2


def test_expired_invite_is_unknown(client, app, register, make_guild):
    owner, joiner = register(), register()
    guild = make_guild(owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"max_age": 60})
    assert client.get(f"/v1/invites/{invite['code']}").status_code == 200
    _set_invite(app, invite["code"], expires_at=utcnow() - timedelta(seconds=1))

    response = client.get(f"/v1/invites/{invite['code']}")
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_INVITE"
    response = _accept(client, joiner, invite["code"])
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_INVITE"
    assert not _joined(client, joiner, guild) and _uses(app, invite["code"]) == 0
    assert client.get(f"/v1/channels/{guild['system_channel_id']}/invites", headers=owner.auth).json() == []
    # An expired invite is never handed out again as the "equal" one.
    assert _invite(client, owner, guild["system_channel_id"], {"max_age": 60})["code"] != invite["code"]


def test_bots_cannot_accept_invites(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    app_body = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Helper"}).json()
    invite = _invite(client, owner, guild["system_channel_id"], {})
    response = client.post(f"/v1/invites/{invite['code']}", headers={"Authorization": f"Bot {app_body['bot']['token']}"})
    assert response.status_code == 403 and response.json()["code"] == "BOTS_CANNOT_ACCEPT_INVITES"
    assert client.post(f"/v1/invites/{invite['code']}").status_code == 401


def test_vanity_code_works_as_an_invite(client, app, register, make_guild):
    owner, joiner = register(), register()
    guild = make_guild(owner)
    set_code = client.patch(f"/v1/guilds/{guild['id']}/vanity-url", headers=owner.auth, json={"code": "gardeners"})
    assert set_code.status_code == 200, set_code.text

    shown = client.get("/v1/invites/gardeners")
    assert shown.status_code == 200, shown.text
    assert shown.json()["code"] == "gardeners" and shown.json()["guild"]["id"] == guild["id"]
    assert shown.json()["channel"]["id"] == guild["system_channel_id"]
    assert shown.json()["inviter"] is None and shown.json()["expires_at"] is None

    response = _accept(client, joiner, "gardeners")
    assert response.status_code == 200, response.text
    assert response.json()["member_count"] == 2 and _joined(client, joiner, guild)
    vanity = client.get(f"/v1/guilds/{guild['id']}/vanity-url", headers=owner.auth).json()
    assert vanity == {"code": "gardeners", "uses": 1}
    # The vanity code is not an invite row: it is changed through the vanity URL, not deleted here.
    response = client.delete("/v1/invites/gardeners", headers=owner.auth)
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_INVITE"


# --- deleting ------------------------------------------------------------------------------


def test_delete_invite_permissions(client, register, make_guild, published):
    owner, member, moderator, stranger = register(), register(), register(), register()
    guild = make_guild(owner)
    for account in (member, moderator):
        _member(client, account, guild, owner)
    channel_id = guild["system_channel_id"]
    owners = _invite(client, owner, channel_id, {"unique": True})
    members_own = _invite(client, member, channel_id, {"unique": True})

    response = client.delete(f"/v1/invites/{owners['code']}", headers=stranger.auth)
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_INVITE"
    response = client.delete(f"/v1/invites/{owners['code']}", headers=member.auth)
    assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"

    published.clear()
    assert client.delete(f"/v1/invites/{members_own['code']}", headers=member.auth).status_code == 204  # own invite
    _grant(client, owner, guild, moderator, Permission.MANAGE_CHANNELS)
    response = client.delete(f"/v1/invites/{owners['code']}", headers={**moderator.auth, "X-Audit-Log-Reason": "cleanup"})
    assert response.status_code == 204

    deleted = [e for e in published if e.name == "INVITE_DELETE"]
    assert [e.data for e in deleted] == [
        {"code": members_own["code"], "channel_id": channel_id, "guild_id": guild["id"]},
        {"code": owners["code"], "channel_id": channel_id, "guild_id": guild["id"]},
    ]
    assert all(e.guild_id == int(guild["id"]) and e.channel_id == int(channel_id) for e in deleted)
    entries = _audit(client, owner, guild, 42)
    assert [(e["user_id"], e.get("reason")) for e in entries] == [(moderator.user_id, "cleanup"),
                                                                  (member.user_id, None)]
    for code in (owners["code"], members_own["code"]):
        assert client.get(f"/v1/invites/{code}").status_code == 404
    response = client.delete(f"/v1/invites/{owners['code']}", headers=owner.auth)
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_INVITE"


def test_manage_guild_may_delete_any_invite(client, register, make_guild):
    owner, admin = register(), register()
    guild = make_guild(owner)
    _member(client, admin, guild, owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"unique": True})
    _grant(client, owner, guild, admin, Permission.MANAGE_GUILD)
    assert client.delete(f"/v1/invites/{invite['code']}", headers=admin.auth).status_code == 204


# --- the race for the last use -------------------------------------------------------------


def _race(app, callers: list[tuple[int, str]]) -> list:
    """Run ``invites.accept`` for each (user id, code) in its own thread and session, all at once."""
    rt = app.runtime
    start = threading.Barrier(len(callers), timeout=30)
    outcomes: list = [None] * len(callers)

    def run(index: int, user_id: int, code: str) -> None:
        try:
            start.wait()
            outcomes[index] = invites.accept(rt, rt.db.session, Identity(user_id, "session"), code)
        except APIError as exc:
            outcomes[index] = exc
        except Exception as exc:  # reported by the assertions below
            outcomes[index] = exc
        finally:
            rt.db.remove()

    threads = [threading.Thread(target=run, args=(i, uid, code)) for i, (uid, code) in enumerate(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing accept never finished"
    return outcomes


@pytest.fixture
def both_see_it_live(monkeypatch):
    """Hold every racer just before it takes its use, until all have checked the invite: the hard case."""
    holder: dict = {}
    original = invites._take_use

    def held(session, code):
        holder["barrier"].wait()
        return original(session, code)

    monkeypatch.setattr(invites, "_take_use", held)

    def arm(count: int) -> None:
        holder["barrier"] = threading.Barrier(count, timeout=30)

    return arm


def test_two_people_racing_for_the_last_use(client, app, register, make_guild, published, both_see_it_live):
    owner, first, second = register(), register(), register()
    guild = make_guild(owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"max_uses": 1})
    published.clear()

    both_see_it_live(2)
    outcomes = _race(app, [(int(first.user_id), invite["code"]), (int(second.user_id), invite["code"])])

    joined = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if not isinstance(o, dict)]
    assert len(joined) == 1 and len(refused) == 1, outcomes
    assert isinstance(refused[0], APIError) and refused[0].status_code == 404
    assert refused[0].code == "UNKNOWN_INVITE"
    assert _uses(app, invite["code"]) == 1
    assert _member_count(app, guild["id"]) == 2
    assert [_joined(client, a, guild) for a in (first, second)].count(True) == 1
    assert len([e for e in published if e.name == "GUILD_MEMBER_ADD"]) == 1


def test_crowd_racing_for_a_few_uses(client, app, register, make_guild):
    owner = register()
    crowd = [register() for _ in range(6)]
    guild = make_guild(owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"max_uses": 2})

    outcomes = _race(app, [(int(a.user_id), invite["code"]) for a in crowd])

    assert sum(isinstance(o, dict) for o in outcomes) == 2, outcomes
    assert all(isinstance(o, dict) or (isinstance(o, APIError) and o.code == "UNKNOWN_INVITE") for o in outcomes)
    assert _uses(app, invite["code"]) == 2 and _member_count(app, guild["id"]) == 3


def test_one_person_accepting_twice_at_once(client, app, register, make_guild, both_see_it_live):
    owner, joiner = register(), register()
    guild = make_guild(owner)
    invite = _invite(client, owner, guild["system_channel_id"], {"max_uses": 5})

    both_see_it_live(2)
    outcomes = _race(app, [(int(joiner.user_id), invite["code"])] * 2)

    assert all(isinstance(o, dict) for o in outcomes), outcomes
    assert _uses(app, invite["code"]) == 1 and _member_count(app, guild["id"]) == 2


def test_presence_count_counts_members_online_on_the_gateway(app, client, register, make_guild, add_member, gateway,
                                                              monkeypatch):
    monkeypatch.setattr(app.runtime.presence, "COUNT_TTL_SECONDS", 0)  # every lookup counts afresh
    owner, online, offline = register(), register(), register()
    guild = make_guild(owner)
    add_member(online, guild)
    add_member(offline, guild)
    channel = next(c for c in client.get(f"/v1/guilds/{guild['id']}/channels", headers=owner.auth).json()
                   if c["type"] == 0)
    code = client.post(f"/v1/channels/{channel['id']}/invites", json={}, headers=owner.auth).json()["code"]
    assert client.get(f"/v1/invites/{code}").json()["presence_count"] == 0

    connection = gateway()
    connection.identify(online.token)
    invisible = gateway()
    invisible.identify(offline.token, presence={"status": "invisible"})
    assert client.get(f"/v1/invites/{code}").json()["presence_count"] == 1
    listed = client.get("/v1/users/@me/guilds?with_counts=true", headers=owner.auth).json()
    assert [g["approximate_presence_count"] for g in listed] == [1]
    assert client.get("/v1/users/@me/guilds", headers=owner.auth).json()[0]["approximate_presence_count"] == 0

    connection.ws.close()  # a normal close ends the session: nobody is online any more
    deadline = time.monotonic() + 5
    while client.get(f"/v1/invites/{code}").json()["presence_count"] != 0:
        assert time.monotonic() < deadline, "presence stayed online after the session ended"
        time.sleep(0.05)


def test_presence_counts_are_remembered_briefly(app, client, register, make_guild, gateway):
    owner = register()
    guild = make_guild(owner)
    code = client.post(f"/v1/channels/{guild['system_channel_id']}/invites", json={}, headers=owner.auth).json()["code"]
    assert client.get(f"/v1/invites/{code}").json()["presence_count"] == 0
    gateway().identify(owner.token)
    # A public lookup does not recount every member each time: the count is at most COUNT_TTL_SECONDS old.
    assert client.get(f"/v1/invites/{code}").json()["presence_count"] == 0
    app.runtime.presence._counts.clear()
    assert client.get(f"/v1/invites/{code}").json()["presence_count"] == 1
