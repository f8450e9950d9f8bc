"""Guild bans (openapi/bans.yaml): who bans whom, what a ban blocks, and how it ends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from service.models import Ban, utcnow
from service.permissions import Permission

BAN, UNBAN = 22, 23


def _invite(client, owner, guild, **body) -> str:
    response = client.post(f"/v1/channels/{guild['system_channel_id']}/invites", headers=owner.auth,
                           json={"max_age": 0, **body})
    assert response.status_code == 200, response.text
    return response.json()["code"]


def _member(client, account, guild, owner) -> None:
    response = client.post(f"/v1/invites/{_invite(client, owner, guild)}", headers=account.auth)
    assert response.status_code == 200, response.text


def _joined(client, account, guild) -> bool:
    return client.get(f"/v1/guilds/{guild['id']}", headers=account.auth).status_code == 200


def _role(client, owner, guild, account, permissions: int, name: str = "Mods") -> dict:
    role = client.post(f"/v1/guilds/{guild['id']}/roles", headers=owner.auth,
                       json={"name": name, "permissions": str(permissions)})
    assert role.status_code == 200, role.text
    added = client.put(f"/v1/guilds/{guild['id']}/members/{account.user_id}/roles/{role.json()['id']}",
                       headers=owner.auth)
    assert added.status_code == 204, added.text
    return role.json()


def _ban(client, actor, guild, user_id, body=None, headers=None):
    kwargs = {} if body is None else {"json": body}
    return client.put(f"/v1/guilds/{guild['id']}/bans/{user_id}", headers={**actor.auth, **(headers or {})}, **kwargs)


def _bans(client, actor, guild, query: str = "") -> list[dict]:
    response = client.get(f"/v1/guilds/{guild['id']}/bans{query}", headers=actor.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _audit(client, owner, guild, action: int) -> list[dict]:
    response = client.get(f"/v1/guilds/{guild['id']}/audit-logs?action_type={action}", headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()["audit_log_entries"]


def test_ban_removes_the_member_and_keeps_them_out(client, register, make_guild, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    _member(client, member, guild, owner)
    before = client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["member_count"]
    published.clear()

    response = _ban(client, owner, guild, member.user_id, {"reason": "Spam", "delete_message_seconds": 3600})
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert not _joined(client, member, guild)
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["member_count"] == before - 1

    [ban] = _bans(client, owner, guild)
    assert ban["user"]["id"] == member.user_id and "email" not in ban["user"]
    assert ban["reason"] == "Spam" and ban["moderator_id"] == owner.user_id
    assert ban["expires_at"] is None and ban["banned_at"]

    names = [e.name for e in published]
    assert "GUILD_MEMBER_REMOVE" in names and "GUILD_BAN_ADD" in names
    [added] = [e for e in published if e.name == "GUILD_BAN_ADD"]
    assert added.guild_id == int(guild["id"])
    assert added.data["guild_id"] == guild["id"] and added.data["user"]["id"] == member.user_id
    [entry] = _audit(client, owner, guild, BAN)
    assert entry["target_id"] == member.user_id and entry["user_id"] == owner.user_id and entry["reason"] == "Spam"


def test_banned_user_is_refused_on_every_invite(client, register, make_guild):
    owner, member = register(), register()
    guild = make_guild(owner)
    _member(client, member, guild, owner)
    assert client.patch(f"/v1/guilds/{guild['id']}/vanity-url", headers=owner.auth,
                        json={"code": "no-spam-here"}).status_code == 200
    voice = next(c for c in guild["channels"] if c["type"] == 2)
    fresh = client.post(f"/v1/channels/{voice['id']}/invites", headers=owner.auth, json={"unique": True}).json()
    assert _ban(client, owner, guild, member.user_id).status_code == 204

    for code in (_invite(client, owner, guild), _invite(client, owner, guild, max_uses=3, unique=True),
                 fresh["code"], "no-spam-here"):
        response = client.post(f"/v1/invites/{code}", headers=member.auth)
        assert response.status_code == 403, (code, response.text)
        assert response.json()["code"] == "USER_BANNED_FROM_GUILD"
        assert client.get(f"/v1/invites/{code}").status_code == 200  # the preview still shows
    assert not _joined(client, member, guild)
    uses = {i["code"]: i["uses"] for i in client.get(f"/v1/guilds/{guild['id']}/invites", headers=owner.auth).json()}
    assert uses[fresh["code"]] == 0  # a refused join spends no use


def test_unban_lets_them_back(client, register, make_guild, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    _member(client, member, guild, owner)
    assert _ban(client, owner, guild, member.user_id).status_code == 204
    published.clear()

    response = client.delete(f"/v1/guilds/{guild['id']}/bans/{member.user_id}",
                             headers={**owner.auth, "X-Audit-Log-Reason": "second chance"})
    assert response.status_code == 204, response.text
    assert _bans(client, owner, guild) == []
    [removed] = [e for e in published if e.name == "GUILD_BAN_REMOVE"]
    assert removed.data["user"]["id"] == member.user_id and removed.guild_id == int(guild["id"])
    [entry] = _audit(client, owner, guild, UNBAN)
    assert entry["target_id"] == member.user_id and entry["reason"] == "second chance"

    assert client.post(f"/v1/invites/{_invite(client, owner, guild)}", headers=member.auth).status_code == 200
    assert _joined(client, member, guild)

    again = client.delete(f"/v1/guilds/{guild['id']}/bans/{member.user_id}", headers=owner.auth)
    assert again.status_code == 404 and again.json()["code"] == "UNKNOWN_BAN"


def test_ban_a_non_member_by_id(client, register, make_guild):
    owner, outsider = register(), register()
    guild = make_guild(owner)
    assert _ban(client, owner, guild, outsider.user_id).status_code == 204
    assert [b["user"]["id"] for b in _bans(client, owner, guild)] == [outsider.user_id]
    response = client.post(f"/v1/invites/{_invite(client, owner, guild)}", headers=outsider.auth)
    assert response.status_code == 403 and response.json()["code"] == "USER_BANNED_FROM_GUILD"

    unknown = _ban(client, owner, guild, "1234567890123456")
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_USER"


def test_reason_from_the_header(client, register, make_guild):
    owner, outsider = register(), register()
    guild = make_guild(owner)
    assert _ban(client, owner, guild, outsider.user_id, headers={"X-Audit-Log-Reason": "raid%20account"}).status_code == 204
    assert _bans(client, owner, guild)[0]["reason"] == "raid account"
    assert _audit(client, owner, guild, BAN)[0]["reason"] == "raid account"


def test_banning_again_replaces_the_ban(client, register, make_guild, published):
    owner, outsider = register(), register()
    guild = make_guild(owner)
    assert _ban(client, owner, guild, outsider.user_id, {"reason": "first"}).status_code == 204
    published.clear()
    replaced = _ban(client, owner, guild, outsider.user_id, {"reason": "second", "ban_duration_seconds": 3600})
    assert replaced.status_code == 204
    [ban] = _bans(client, owner, guild)
    assert ban["reason"] == "second" and ban["expires_at"] is not None
    assert not [e for e in published if e.name == "GUILD_BAN_ADD"]  # was banned all along


def test_ban_validates_the_body(client, register, make_guild):
    owner, outsider = register(), register()
    guild = make_guild(owner)
    for body in ({"delete_message_days": 8}, {"delete_message_seconds": 604801}, {"ban_duration_seconds": 30},
                 {"ban_duration_seconds": 63072001}, {"reason": "x" * 513}):
        response = _ban(client, owner, guild, outsider.user_id, body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "INVALID_FORM_BODY"
    assert _bans(client, owner, guild) == []
    accepted = _ban(client, owner, guild, outsider.user_id, {"delete_message_days": 7, "ban_duration_seconds": 0})
    assert accepted.status_code == 204
    assert _bans(client, owner, guild)[0]["expires_at"] is None


def test_temporary_ban_runs_out(client, app, register, make_guild):
    owner, member = register(), register()
    guild = make_guild(owner)
    _member(client, member, guild, owner)
    assert _ban(client, owner, guild, member.user_id, {"ban_duration_seconds": 60}).status_code == 204
    [ban] = _bans(client, owner, guild)
    assert ban["expires_at"] is not None
    code = _invite(client, owner, guild)
    assert client.post(f"/v1/invites/{code}", headers=member.auth).status_code == 403
    assert _audit(client, owner, guild, BAN)[0]["options"] == {"ban_duration_seconds": "60"}

    with app.runtime.db.engine.begin() as connection:
        connection.execute(update(Ban).where(Ban.user_id == int(member.user_id))
                           .values(expires_at=utcnow() - timedelta(seconds=1)))

    assert _bans(client, owner, guild) == []  # run out: no longer listed
    gone = client.delete(f"/v1/guilds/{guild['id']}/bans/{member.user_id}", headers=owner.auth)
    assert gone.status_code == 404 and gone.json()["code"] == "UNKNOWN_BAN"
    assert client.post(f"/v1/invites/{code}", headers=member.auth).status_code == 200
    assert _joined(client, member, guild)


def test_who_may_ban(client, register, make_guild):
    owner, moderator, member, peer, stranger = (register() for _ in range(5))
    guild = make_guild(owner)
    for account in (moderator, member, peer):
        _member(client, account, guild, owner)
    gid = guild["id"]

    # A stranger learns nothing about the guild.
    for response in (client.get(f"/v1/guilds/{gid}/bans", headers=stranger.auth),
                     _ban(client, stranger, guild, member.user_id),
                     client.delete(f"/v1/guilds/{gid}/bans/{member.user_id}", headers=stranger.auth)):
        assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_GUILD"

    # A member without BAN_MEMBERS may do none of it.
    assert _ban(client, owner, guild, stranger.user_id).status_code == 204
    for response in (client.get(f"/v1/guilds/{gid}/bans", headers=member.auth),
                     _ban(client, member, guild, peer.user_id),
                     client.delete(f"/v1/guilds/{gid}/bans/{stranger.user_id}", headers=member.auth)):
        assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"
    assert _joined(client, peer, guild)

    # With BAN_MEMBERS: everything, below their own rank.
    mods = _role(client, owner, guild, moderator, Permission.BAN_MEMBERS, "Mods")
    assert [b["user"]["id"] for b in _bans(client, moderator, guild)] == [stranger.user_id]
    assert _ban(client, moderator, guild, member.user_id).status_code == 204
    assert not _joined(client, member, guild)
    assert client.delete(f"/v1/guilds/{gid}/bans/{stranger.user_id}", headers=moderator.auth).status_code == 204

    for target in (moderator, owner):  # not themselves, never the owner
        response = _ban(client, moderator, guild, target.user_id)
        assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"
    equal = client.put(f"/v1/guilds/{gid}/members/{peer.user_id}/roles/{mods['id']}", headers=owner.auth)
    assert equal.status_code == 204
    response = _ban(client, moderator, guild, peer.user_id)  # same top role: not below them
    assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"
    assert _joined(client, peer, guild)
    response = _ban(client, owner, guild, owner.user_id)
    assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"


def test_list_pages_by_user_id(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    targets = sorted((register() for _ in range(4)), key=lambda a: int(a.user_id))
    for account in targets:
        assert _ban(client, owner, guild, account.user_id).status_code == 204
    ids = [a.user_id for a in targets]

    assert [b["user"]["id"] for b in _bans(client, owner, guild)] == ids
    assert [b["user"]["id"] for b in _bans(client, owner, guild, "?limit=2")] == ids[:2]
    assert [b["user"]["id"] for b in _bans(client, owner, guild, f"?after={ids[1]}")] == ids[2:]
    assert [b["user"]["id"] for b in _bans(client, owner, guild, f"?before={ids[3]}&limit=2")] == ids[1:3]
    bad = client.get(f"/v1/guilds/{guild['id']}/bans?limit=0", headers=owner.auth)
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_FORM_BODY"
