"""Guild roles and the role hierarchy (openapi/roles.yaml)."""

from __future__ import annotations

from service import roles as roles_service
from service.permissions import Permission

MANAGE_ROLES = str(int(Permission.MANAGE_ROLES))


def _role(client, owner, guild, name, permissions="0", **extra) -> dict:
    response = client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": name, "permissions": permissions, **extra},
                           headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _give(client, owner, guild, account, role) -> None:
    response = client.put(f"/v1/guilds/{guild['id']}/members/{account.user_id}/roles/{role['id']}", headers=owner.auth)
    assert response.status_code == 204, response.text


def _positions(client, account, guild) -> dict[str, int]:
    return {r["name"]: r["position"] for r in client.get(f"/v1/guilds/{guild['id']}/roles", headers=account.auth).json()}


def test_create_lists_and_orders(client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    first = _role(client, owner, guild, "First", "8198", color=0x3498DB, hoist=True)
    assert first["position"] == 1 and first["permissions"] == "8198" and first["color"] == 0x3498DB
    assert first["hoist"] is True and first["mentionable"] is False
    _role(client, owner, guild, "Second", 2048)  # permissions may be an integer too
    assert _positions(client, owner, guild) == {"@everyone": 0, "Second": 1, "First": 2}
    events = [e for e in published if e.name == "GUILD_ROLE_CREATE"]
    assert [e.data["role"]["name"] for e in events] == ["First", "Second"]
    assert events[0].data["guild_id"] == guild["id"]


def test_create_validates(client, register, make_guild, monkeypatch):
    owner = register()
    guild = make_guild(owner)
    unknown_bits = client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": "x", "permissions": str(1 << 19)},
                               headers=owner.auth)
    assert unknown_bits.status_code == 400
    assert unknown_bits.json()["errors"][0]["code"] == "INVALID_PERMISSIONS_INTEGER"
    negative = client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": "x", "permissions": -1}, headers=owner.auth)
    assert negative.status_code == 400
    monkeypatch.setattr(roles_service, "MAX_GUILD_ROLES", 2)
    _role(client, owner, guild, "Only")
    limited = client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": "Too many"}, headers=owner.auth)
    assert limited.status_code == 400 and limited.json()["code"] == "MAX_GUILD_ROLES"


def test_hierarchy(client, register, make_guild, add_member):
    owner, manager, member = register(), register(), register()
    guild = make_guild(owner)
    add_member(manager, guild)
    add_member(member, guild)
    top = _role(client, owner, guild, "Top")
    manager_role = _role(client, owner, guild, "Manager", MANAGE_ROLES)
    low = _role(client, owner, guild, "Low")  # positions: Low 1, Manager 2, Top 3
    _give(client, owner, guild, manager, manager_role)
    base = f"/v1/guilds/{guild['id']}"

    # Below the manager's own role: allowed.
    assert client.patch(f"{base}/roles/{low['id']}", json={"name": "Lower"}, headers=manager.auth).status_code == 200
    assert client.put(f"{base}/members/{member.user_id}/roles/{low['id']}", headers=manager.auth).status_code == 204
    # At or above it: refused, and nothing changes.
    for role in (manager_role, top):
        assert client.patch(f"{base}/roles/{role['id']}", json={"name": "Mine"}, headers=manager.auth).status_code == 403
        assert client.put(f"{base}/members/{member.user_id}/roles/{role['id']}",
                          headers=manager.auth).status_code == 403
        assert client.delete(f"{base}/roles/{role['id']}", headers=manager.auth).status_code == 403
    names = {r["id"]: r["name"] for r in client.get(f"{base}/roles", headers=owner.auth).json()}
    assert names[top["id"]] == "Top" and names[manager_role["id"]] == "Manager" and names[low["id"]] == "Lower"
    member_roles = client.get(f"{base}/members/{member.user_id}", headers=owner.auth).json()["roles"]
    assert member_roles == [low["id"]]

    # Nobody grants what they lack: MANAGE_ROLES yes, BAN_MEMBERS no.
    granted = client.patch(f"{base}/roles/{low['id']}", json={"permissions": MANAGE_ROLES}, headers=manager.auth)
    assert granted.status_code == 200
    lacking = client.patch(f"{base}/roles/{low['id']}", json={"permissions": str(int(Permission.BAN_MEMBERS))},
                           headers=manager.auth)
    assert lacking.status_code == 403 and lacking.json()["permissions"] == ["BAN_MEMBERS"]
    created = client.post(f"{base}/roles", json={"name": "Ban hammer", "permissions": str(int(Permission.BAN_MEMBERS))},
                          headers=manager.auth)
    assert created.status_code == 403
    # The owner may do all of it.
    assert client.patch(f"{base}/roles/{top['id']}", json={"permissions": "8"}, headers=owner.auth).status_code == 200


def test_everyone_role_is_special(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    base = f"/v1/guilds/{guild['id']}/roles/{guild['id']}"
    renamed = client.patch(base, json={"name": "everybody", "permissions": "1024"}, headers=owner.auth)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "@everyone" and renamed.json()["permissions"] == "1024"
    deleted = client.delete(base, headers=owner.auth)
    assert deleted.status_code == 400 and deleted.json()["code"] == "INVALID_ROLE"
    moved = client.patch(f"/v1/guilds/{guild['id']}/roles", json=[{"id": guild["id"], "position": 3}],
                         headers=owner.auth)
    assert moved.status_code == 400


def test_delete_removes_the_role_from_members(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    role = _role(client, owner, guild, "Temporary")
    _give(client, owner, guild, member, role)
    published.clear()
    assert client.delete(f"/v1/guilds/{guild['id']}/roles/{role['id']}", headers=owner.auth).status_code == 204
    assert client.get(f"/v1/guilds/{guild['id']}/members/{member.user_id}", headers=owner.auth).json()["roles"] == []
    assert [e.name for e in published] == ["GUILD_ROLE_DELETE"]
    assert published[0].data == {"guild_id": guild["id"], "role_id": role["id"]}
    again = client.delete(f"/v1/guilds/{guild['id']}/roles/{role['id']}", headers=owner.auth)
    assert again.status_code == 404 and again.json()["code"] == "UNKNOWN_ROLE"


def test_reorder(client, register, make_guild, add_member, published):
    owner, manager = register(), register()
    guild = make_guild(owner)
    add_member(manager, guild)
    a = _role(client, owner, guild, "A")
    manager_role = _role(client, owner, guild, "Manager", MANAGE_ROLES)
    b = _role(client, owner, guild, "B")
    c = _role(client, owner, guild, "C")  # C 1, B 2, Manager 3, A 4
    _give(client, owner, guild, manager, manager_role)
    url = f"/v1/guilds/{guild['id']}/roles"

    published.clear()
    assert client.patch(url, json=[{"id": c["id"], "position": 2}], headers=manager.auth).status_code == 204
    assert _positions(client, owner, guild) == {"@everyone": 0, "B": 1, "C": 2, "Manager": 3, "A": 4}
    assert published[-1].name == "GUILD_ROLE_UPDATE_BULK"
    assert {r["name"] for r in published[-1].data["roles"]} == {"B", "C"}

    # Not to or above the manager's own place, and not a role above it.
    assert client.patch(url, json=[{"id": c["id"], "position": 3}], headers=manager.auth).status_code == 403
    assert client.patch(url, json=[{"id": a["id"], "position": 1}], headers=manager.auth).status_code == 403
    assert _positions(client, owner, guild)["C"] == 2
    # The owner moves anything.
    assert client.patch(url, json=[{"id": a["id"], "position": 1}], headers=owner.auth).status_code == 204
    assert _positions(client, owner, guild) == {"@everyone": 0, "A": 1, "B": 2, "C": 3, "Manager": 4}
    assert b["id"] != c["id"]


def test_hoist_positions(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    role = _role(client, owner, guild, "Hoisted", hoist=True)
    url = f"/v1/guilds/{guild['id']}/roles/hoist-positions"
    assert client.patch(url, json=[{"id": role["id"], "hoist_position": 2}], headers=owner.auth).status_code == 204
    listed = {r["id"]: r for r in client.get(f"/v1/guilds/{guild['id']}/roles", headers=owner.auth).json()}
    assert listed[role["id"]]["hoist_position"] == 2
    assert client.delete(url, headers=owner.auth).status_code == 204
    listed = {r["id"]: r for r in client.get(f"/v1/guilds/{guild['id']}/roles", headers=owner.auth).json()}
    assert listed[role["id"]]["hoist_position"] is None


def test_roles_grant_permissions(client, register, make_guild, add_member):
    """A role's permission takes effect at once, and stops when the role goes."""
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    role = _role(client, owner, guild, "Channel manager", str(int(Permission.MANAGE_CHANNELS)))
    create = {"type": 0, "name": "new"}
    assert client.post(f"/v1/guilds/{guild['id']}/channels", json=create, headers=member.auth).status_code == 403
    _give(client, owner, guild, member, role)
    assert client.post(f"/v1/guilds/{guild['id']}/channels", json=create, headers=member.auth).status_code == 200
    client.delete(f"/v1/guilds/{guild['id']}/members/{member.user_id}/roles/{role['id']}", headers=owner.auth)
    assert client.post(f"/v1/guilds/{guild['id']}/channels", json=create, headers=member.auth).status_code == 403


def test_a_reorder_never_lifts_a_role_past_ones_own(client, register, make_guild, add_member):
    """Found in review: gaps left by deleted roles let a moderator move a role above an administrator."""
    owner, moderator, admin = register(), register(), register()
    guild = make_guild(owner)
    add_member(moderator, guild)
    add_member(admin, guild)
    admin_role = _role(client, owner, guild, "Admin", str(int(Permission.ADMINISTRATOR)))
    mod_role = _role(client, owner, guild, "Mod", str(int(Permission.MANAGE_ROLES | Permission.BAN_MEMBERS)))
    _give(client, owner, guild, moderator, mod_role)
    _give(client, owner, guild, admin, admin_role)
    # The moderator alone: make roles, delete two, keep the lowest for themself.
    made = [_role(client, moderator, guild, name) for name in ("x", "y", "low")]
    for role in made[:2]:
        assert client.delete(f"/v1/guilds/{guild['id']}/roles/{role['id']}", headers=moderator.auth).status_code == 204
    _give(client, moderator, guild, moderator, made[2])
    positions = _positions(client, owner, guild)
    assert sorted(positions.values()) == list(range(len(positions)))  # no gaps

    for target in range(1, len(positions) + 1):
        client.patch(f"/v1/guilds/{guild['id']}/roles", json=[{"id": made[2]["id"], "position": target}],
                     headers=moderator.auth)
        after = _positions(client, owner, guild)
        assert after["Admin"] > after["Mod"] and after["Mod"] > after["low"]
    base = f"/v1/guilds/{guild['id']}"
    assert client.delete(f"{base}/roles/{admin_role['id']}", headers=moderator.auth).status_code == 403
    assert client.put(f"{base}/bans/{admin.user_id}", json={}, headers=moderator.auth).status_code == 403


def test_deleting_a_role_removes_its_overwrites(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    role = _role(client, owner, guild, "Gone")
    channel = guild["system_channel_id"]
    client.put(f"/v1/channels/{channel}/permissions/{role['id']}", json={"type": 0, "allow": "2048"}, headers=owner.auth)
    assert client.delete(f"/v1/guilds/{guild['id']}/roles/{role['id']}", headers=owner.auth).status_code == 204
    overwrites = client.get(f"/v1/channels/{channel}", headers=owner.auth).json()["permission_overwrites"]
    assert overwrites == []
    resaved = client.patch(f"/v1/channels/{channel}", json={"permission_overwrites": overwrites}, headers=owner.auth)
    assert resaved.status_code == 200


def test_resetting_hoist_positions_spares_higher_roles(client, register, make_guild, add_member):
    owner, manager = register(), register()
    guild = make_guild(owner)
    add_member(manager, guild)
    top = _role(client, owner, guild, "Top")
    manager_role = _role(client, owner, guild, "Manager", MANAGE_ROLES)
    low = _role(client, owner, guild, "Low")
    _give(client, owner, guild, manager, manager_role)
    url = f"/v1/guilds/{guild['id']}/roles/hoist-positions"
    client.patch(url, json=[{"id": top["id"], "hoist_position": 1}, {"id": low["id"], "hoist_position": 2}],
                 headers=owner.auth)
    assert client.delete(url, headers=manager.auth).status_code == 204
    hoists = {r["name"]: r["hoist_position"] for r in client.get(f"/v1/guilds/{guild['id']}/roles",
                                                                  headers=owner.auth).json()}
    assert hoists["Top"] == 1 and hoists["Low"] is None


def test_role_limit_holds_under_concurrent_creates(app, client, register, make_guild, monkeypatch):
    import threading

    from service.auth import Identity
    from service.errors import APIError

    monkeypatch.setattr(roles_service, "MAX_GUILD_ROLES", 6)
    owner = register()
    guild = make_guild(owner)
    identity = Identity(int(owner.user_id), "session")
    outcomes, barrier = [], threading.Barrier(8)

    def create(n):
        rt = app.runtime
        barrier.wait()
        try:
            roles_service.create(rt, rt.db.session, identity, guild["id"], {"name": f"r{n}"}, None)
            outcomes.append("ok")
        except APIError as error:
            outcomes.append(error.code)
        finally:
            rt.db.remove()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["MAX_GUILD_ROLES"] * 3 + ["ok"] * 5
    assert len(client.get(f"/v1/guilds/{guild['id']}/roles", headers=owner.auth).json()) == 6
