"""Guild members: list, read, nicknames, roles, voice flags, timeouts, kicks, search (openapi/members.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.permissions import Permission


def _role(client, owner, guild, name, permissions: int) -> dict:
    response = client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": name, "permissions": str(permissions)},
                           headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _give(client, owner, guild, account, role) -> None:
    url = f"/v1/guilds/{guild['id']}/members/{account.user_id}/roles/{role['id']}"
    assert client.put(url, headers=owner.auth).status_code == 204


def test_list_pages_by_user_id(client, register, make_guild, add_member):
    owner = register()
    guild = make_guild(owner)
    others = [register() for _ in range(3)]
    for account in others:
        add_member(account, guild)
    ids = sorted([owner.user_id] + [a.user_id for a in others], key=int)
    url = f"/v1/guilds/{guild['id']}/members"
    assert [m["user"]["id"] for m in client.get(url, headers=owner.auth).json()] == ids[:1]  # limit defaults to 1
    assert [m["user"]["id"] for m in client.get(f"{url}?limit=1000", headers=owner.auth).json()] == ids
    page = client.get(f"{url}?limit=2&after={ids[1]}", headers=others[0].auth).json()
    assert [m["user"]["id"] for m in page] == ids[2:4]
    assert "email" not in page[0]["user"]
    assert client.get(f"{url}?limit=1001", headers=owner.auth).status_code == 400


def test_read_one_and_me(client, register, make_guild, add_member):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    base = f"/v1/guilds/{guild['id']}/members"
    assert client.get(f"{base}/{member.user_id}", headers=owner.auth).json()["user"]["id"] == member.user_id
    assert client.get(f"{base}/@me", headers=member.auth).json()["user"]["id"] == member.user_id
    missing = client.get(f"{base}/{stranger.user_id}", headers=owner.auth)
    assert missing.status_code == 404 and missing.json()["code"] == "UNKNOWN_MEMBER"
    assert client.get(f"{base}/{owner.user_id}", headers=stranger.auth).json()["code"] == "UNKNOWN_GUILD"


def test_nicknames(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    base = f"/v1/guilds/{guild['id']}/members"

    mine = client.patch(f"{base}/@me", json={"nick": "  Rosy "}, headers=member.auth)
    assert mine.status_code == 200 and mine.json()["nick"] == "Rosy"
    assert any(e.name == "GUILD_MEMBER_UPDATE" and e.data["nick"] == "Rosy" for e in published)
    # Changing someone else's needs MANAGE_NICKNAMES.
    assert client.patch(f"{base}/{owner.user_id}", json={"nick": "Boss"}, headers=member.auth).status_code == 403
    by_owner = client.patch(f"{base}/{member.user_id}", json={"nick": None}, headers=owner.auth)
    assert by_owner.status_code == 200 and by_owner.json()["nick"] is None
    # Without CHANGE_NICKNAME on @everyone, not even one's own.
    everyone = str(int(Permission.VIEW_CHANNEL))
    client.patch(f"/v1/guilds/{guild['id']}/roles/{guild['id']}", json={"permissions": everyone}, headers=owner.auth)
    assert client.patch(f"{base}/@me", json={"nick": "Again"}, headers=member.auth).status_code == 403


def test_roles_replace_through_patch(client, register, make_guild, add_member):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    first, second = _role(client, owner, guild, "First", 0), _role(client, owner, guild, "Second", 0)
    url = f"/v1/guilds/{guild['id']}/members/{member.user_id}"
    response = client.patch(url, json={"roles": [first["id"], int(second["id"])]}, headers=owner.auth)
    assert response.status_code == 200 and set(response.json()["roles"]) == {first["id"], second["id"]}
    response = client.patch(url, json={"roles": [second["id"]]}, headers=owner.auth)
    assert response.json()["roles"] == [second["id"]]
    unknown = client.patch(url, json={"roles": ["123"]}, headers=owner.auth)
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["code"] == "UNKNOWN_ROLE"
    log = client.get(f"/v1/guilds/{guild['id']}/audit-logs?action_type=25", headers=owner.auth).json()
    assert len(log["audit_log_entries"]) == 2
    removed = [{"key": "$remove", "new_value": [{"id": first["id"], "name": "First"}]}]
    assert log["audit_log_entries"][0]["changes"] == removed


def test_timeout_limits_a_member_to_reading(client, register, make_guild, add_member):
    owner, moderator, member = register(), register(), register()
    guild = make_guild(owner)
    add_member(moderator, guild)
    add_member(member, guild)
    _give(client, owner, guild, moderator, _role(client, owner, guild, "Mod", int(Permission.MODERATE_MEMBERS)))
    _give(client, owner, guild, member, _role(client, owner, guild, "Builder", int(Permission.MANAGE_CHANNELS)))
    url = f"/v1/guilds/{guild['id']}/members/{member.user_id}"
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    # The member's role is below the moderator's, so the moderator may time them out.
    response = client.patch(url, json={"communication_disabled_until": soon}, headers=moderator.auth)
    assert response.status_code == 200, response.text
    assert response.json()["communication_disabled_until"] is not None
    create = {"type": 0, "name": "sneaky"}
    assert client.post(f"/v1/guilds/{guild['id']}/channels", json=create, headers=member.auth).status_code == 403
    assert client.get(f"/v1/guilds/{guild['id']}/channels", headers=member.auth).status_code == 200  # still reads

    too_long = (datetime.now(UTC) + timedelta(days=29)).isoformat()
    rejected = client.patch(url, json={"communication_disabled_until": too_long}, headers=owner.auth)
    assert rejected.status_code == 400
    lifted = client.patch(url, json={"communication_disabled_until": None}, headers=owner.auth)
    assert lifted.json()["communication_disabled_until"] is None
    assert client.post(f"/v1/guilds/{guild['id']}/channels", json=create, headers=member.auth).status_code == 200

    # Nobody times out the owner, themselves, or an administrator.
    owner_url = f"/v1/guilds/{guild['id']}/members/{owner.user_id}"
    assert client.patch(owner_url, json={"communication_disabled_until": soon}, headers=moderator.auth).status_code == 403
    self_url = f"/v1/guilds/{guild['id']}/members/{moderator.user_id}"
    assert client.patch(self_url, json={"communication_disabled_until": soon}, headers=moderator.auth).status_code == 403


def test_mute_and_deaf_need_their_permissions(client, register, make_guild, add_member):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    url = f"/v1/guilds/{guild['id']}/members/{member.user_id}"
    assert client.patch(url, json={"mute": True}, headers=member.auth).status_code == 403
    response = client.patch(url, json={"mute": True, "deaf": True}, headers=owner.auth)
    assert response.json()["mute"] is True and response.json()["deaf"] is True


def test_kick(client, register, make_guild, add_member, published):
    owner, kicker, member, peer = register(), register(), register(), register()
    guild = make_guild(owner)
    for account in (kicker, member, peer):
        add_member(account, guild)
    kicker_role = _role(client, owner, guild, "Kicker", int(Permission.KICK_MEMBERS))
    _give(client, owner, guild, kicker, kicker_role)
    _give(client, owner, guild, peer, kicker_role)
    base = f"/v1/guilds/{guild['id']}/members"

    assert client.delete(f"{base}/{kicker.user_id}", headers=member.auth).status_code == 403  # no permission
    assert client.delete(f"{base}/{peer.user_id}", headers=kicker.auth).status_code == 403  # same rank
    assert client.delete(f"{base}/{owner.user_id}", headers=kicker.auth).status_code == 403
    published.clear()
    kicked = client.delete(f"{base}/{member.user_id}", headers={**kicker.auth, "X-Audit-Log-Reason": "spam"})
    assert kicked.status_code == 204
    assert client.get(f"/v1/guilds/{guild['id']}", headers=member.auth).status_code == 404
    assert [e.name for e in published] == ["GUILD_MEMBER_REMOVE", "GUILD_DELETE"]
    (entry,) = client.get(f"/v1/guilds/{guild['id']}/audit-logs?action_type=20", headers=owner.auth).json()[
        "audit_log_entries"]
    assert entry["target_id"] == member.user_id and entry["reason"] == "spam"
    assert client.delete(f"{base}/{member.user_id}", headers=kicker.auth).json()["code"] == "UNKNOWN_MEMBER"


def test_search(client, register, make_guild, add_member):
    owner = register(global_name="Owner Person")
    rose, ivy = register(global_name="Rose Gardener"), register(global_name="Ivy")
    guild = make_guild(owner)
    add_member(rose, guild)
    add_member(ivy, guild)
    role = _role(client, owner, guild, "Flowers", 0)
    _give(client, owner, guild, ivy, role)
    client.patch(f"/v1/guilds/{guild['id']}/members/@me", json={"nick": "The Gardener"}, headers=owner.auth)
    url = f"/v1/guilds/{guild['id']}/members-search"

    found = client.post(url, json={"query": "GARDENER"}, headers=ivy.auth).json()
    assert {m["user_id"] for m in found["members"]} == {owner.user_id, rose.user_id}
    assert found["total_result_count"] == 2 and found["page_result_count"] == 2
    by_role = client.post(url, json={"role_ids": [role["id"]]}, headers=ivy.auth).json()
    assert [m["user_id"] for m in by_role["members"]] == [ivy.user_id]
    assert by_role["members"][0]["role_ids"] == [role["id"]]
    paged = client.post(url, json={"limit": 1, "offset": 1, "sort_order": "asc"}, headers=ivy.auth).json()
    assert paged["total_result_count"] == 3 and [m["user_id"] for m in paged["members"]] == [rose.user_id]
    literal = client.post(url, json={"query": "%"}, headers=ivy.auth).json()
    assert literal["members"] == []  # LIKE wildcards are matched literally


def test_search_accepts_the_widest_time_bounds(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    body = {"joined_at_gte": 0, "joined_at_lte": 253402300799000, "user_created_at_gte": 1420070400000,
            "user_created_at_lte": 253402300799000}
    response = client.post(f"/v1/guilds/{guild['id']}/members-search", json=body, headers=owner.auth)
    assert response.status_code == 200, response.text
    assert [m["user_id"] for m in response.json()["members"]] == [owner.user_id]
    none_yet = client.post(f"/v1/guilds/{guild['id']}/members-search", json={**body, "joined_at_lte": 0},
                           headers=owner.auth)
    assert none_yet.json()["members"] == [] and none_yet.json()["total_result_count"] == 0
