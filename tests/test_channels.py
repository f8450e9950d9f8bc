"""Guild channels and permission overwrites (openapi/channels.yaml)."""

from __future__ import annotations

from service import channels as channels_service
from service.permissions import Permission


def _channels(guild) -> dict:
    return {c["name"]: c for c in guild["channels"]}


def _create(client, account, guild, **body):
    return client.post(f"/v1/guilds/{guild['id']}/channels", json=body, headers=account.auth)


def test_create_each_type(client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    category = _channels(guild)["Text Channels"]

    text = _create(client, owner, guild, type=0, name="Seed  Swap", topic="Trade seeds", parent_id=category["id"],
                   rate_limit_per_user=30, nsfw=True)
    assert text.status_code == 200, text.text
    text = text.json()
    assert text["name"] == "seed-swap" and text["topic"] == "Trade seeds"
    assert text["parent_id"] == category["id"] and text["position"] == 1  # after #general
    assert text["rate_limit_per_user"] == 30 and text["nsfw"] is True

    voice = _create(client, owner, guild, type=2, name="Quiet Room", user_limit=5).json()
    assert voice["name"] == "Quiet Room" and voice["bitrate"] == 64000 and voice["user_limit"] == 5
    link = _create(client, owner, guild, type=998, name="Docs", url="https://example.com/docs").json()
    assert link["url"] == "https://example.com/docs"
    new_category = _create(client, owner, guild, type=4, name="Projects").json()
    assert new_category["type"] == 4 and new_category["parent_id"] is None

    assert _create(client, owner, guild, type=998, name="No URL").json()["errors"][0]["path"] == "url"
    nested = _create(client, owner, guild, type=4, name="Nested", parent_id=new_category["id"])
    assert nested.status_code == 400 and nested.json()["errors"][0]["code"] == "INVALID_CHANNEL_TYPE"
    under_text = _create(client, owner, guild, type=0, name="x", parent_id=text["id"])
    assert under_text.status_code == 400
    assert _create(client, owner, guild, type=3, name="x").status_code == 400

    created = [e for e in published if e.name == "CHANNEL_CREATE"]
    assert [e.data["id"] for e in created] == [text["id"], voice["id"], link["id"], new_category["id"]]
    assert all(e.channel_id == int(e.data["id"]) and e.guild_id == int(guild["id"]) for e in created)


def test_channel_limit(client, register, make_guild, monkeypatch):
    monkeypatch.setattr(channels_service, "MAX_GUILD_CHANNELS", 5)
    owner = register()
    guild = make_guild(owner)  # four channels already
    assert _create(client, owner, guild, type=0, name="fifth").status_code == 200
    response = _create(client, owner, guild, type=0, name="sixth")
    assert response.status_code == 400 and response.json()["code"] == "MAX_GUILD_CHANNELS"


def test_update_and_delete(client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    general = _channels(guild)["general"]
    url = f"/v1/channels/{general['id']}"

    response = client.patch(url, json={"name": "Main Hall", "topic": "Say hi", "rate_limit_per_user": 5},
                            headers=owner.auth)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "main-hall" and response.json()["topic"] == "Say hi"
    assert client.patch(url, json={"bitrate": 96000}, headers=owner.auth).status_code == 400  # not a voice setting
    assert client.patch(url, json={"type": 2}, headers=owner.auth).json()["errors"][0]["code"] == "INVALID_CHANNEL_TYPE"
    assert client.get(url, headers=owner.auth).json()["topic"] == "Say hi"

    assert client.delete(url, headers=owner.auth).status_code == 204
    assert client.get(url, headers=owner.auth).status_code == 404
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["system_channel_id"] is None
    assert [e.name for e in published if e.name.startswith("CHANNEL")] == ["CHANNEL_UPDATE", "CHANNEL_DELETE"]
    log = client.get(f"/v1/guilds/{guild['id']}/audit-logs", headers=owner.auth).json()["audit_log_entries"]
    assert [e["action_type"] for e in log] == [12, 1, 11]  # deleting the system channel clears the guild's pointer
    assert log[1]["changes"] == [{"key": "system_channel_id", "old_value": general["id"], "new_value": None}]


def test_deleting_a_category_keeps_its_channels(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    category, general = _channels(guild)["Text Channels"], _channels(guild)["general"]
    assert client.delete(f"/v1/channels/{category['id']}", headers=owner.auth).status_code == 204
    assert client.get(f"/v1/channels/{general['id']}", headers=owner.auth).json()["parent_id"] is None


def test_reorder_and_move_between_categories(client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    named = _channels(guild)
    text_category, voice_category = named["Text Channels"], named["Voice Channels"]
    second = _create(client, owner, guild, type=0, name="second", parent_id=text_category["id"]).json()
    general = named["general"]

    published.clear()
    response = client.patch(f"/v1/guilds/{guild['id']}/channels",
                            json=[{"id": second["id"], "position": 0}], headers=owner.auth)
    assert response.status_code == 204
    after = {c["id"]: c for c in client.get(f"/v1/guilds/{guild['id']}/channels", headers=owner.auth).json()}
    assert after[second["id"]]["position"] == 0 and after[general["id"]]["position"] == 1
    assert published[-1].name == "CHANNEL_UPDATE_BULK"

    client.put(f"/v1/channels/{voice_category['id']}/permissions/{guild['id']}",
               json={"type": 0, "deny": str(int(Permission.SEND_MESSAGES))}, headers=owner.auth)
    moved = client.patch(f"/v1/guilds/{guild['id']}/channels",
                         json=[{"id": general["id"], "parent_id": voice_category["id"], "lock_permissions": True}],
                         headers=owner.auth)
    assert moved.status_code == 204
    general_now = client.get(f"/v1/channels/{general['id']}", headers=owner.auth).json()
    assert general_now["parent_id"] == voice_category["id"]
    assert general_now["permission_overwrites"] == [
        {"id": guild["id"], "type": 0, "allow": "0", "deny": str(int(Permission.SEND_MESSAGES))}]

    unknown = client.patch(f"/v1/guilds/{guild['id']}/channels", json=[{"id": "123", "position": 1}],
                           headers=owner.auth)
    assert unknown.status_code == 400


def test_overwrites_hide_a_channel(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    general = _channels(guild)["general"]
    url = f"/v1/channels/{general['id']}/permissions/{guild['id']}"

    assert client.get(f"/v1/channels/{general['id']}", headers=member.auth).status_code == 200
    response = client.put(url, json={"type": 0, "deny": str(int(Permission.VIEW_CHANNEL))}, headers=owner.auth)
    assert response.status_code == 204
    hidden = client.get(f"/v1/channels/{general['id']}", headers=member.auth)
    assert hidden.status_code == 403 and hidden.json()["code"] == "MISSING_ACCESS"
    listed = client.get(f"/v1/guilds/{guild['id']}/channels", headers=member.auth).json()
    assert general["id"] not in {c["id"] for c in listed}
    assert general["id"] not in {c["id"] for c in client.get(f"/v1/guilds/{guild['id']}", headers=member.auth)
                                 .json()["channels"]}

    # A member overwrite lets this one member back in.
    allow_member = client.put(f"/v1/channels/{general['id']}/permissions/{member.user_id}",
                              json={"type": 1, "allow": int(Permission.VIEW_CHANNEL)}, headers=owner.auth)
    assert allow_member.status_code == 204
    assert client.get(f"/v1/channels/{general['id']}", headers=member.auth).status_code == 200

    assert client.delete(url, headers=owner.auth).status_code == 204
    assert client.delete(url, headers=owner.auth).json()["code"] == "UNKNOWN_OVERWRITE"
    log = client.get(f"/v1/guilds/{guild['id']}/audit-logs", headers=owner.auth).json()["audit_log_entries"]
    assert [e["action_type"] for e in log][:3] == [15, 13, 13]
    assert log[0]["options"] == {"id": guild["id"], "type": "0"}
    assert sum(e.name == "CHANNEL_UPDATE" for e in published) == 3


def test_overwrite_targets_and_rights(client, register, make_guild, add_member):
    owner, manager, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(manager, guild)
    general = _channels(guild)["general"]
    role = client.post(f"/v1/guilds/{guild['id']}/roles",
                       json={"name": "Manager", "permissions": str(int(Permission.MANAGE_ROLES | Permission.VIEW_CHANNEL))},
                       headers=owner.auth).json()
    client.put(f"/v1/guilds/{guild['id']}/members/{manager.user_id}/roles/{role['id']}", headers=owner.auth)

    unknown_role = client.put(f"/v1/channels/{general['id']}/permissions/123", json={"type": 0}, headers=owner.auth)
    assert unknown_role.status_code == 400 and unknown_role.json()["errors"][0]["code"] == "UNKNOWN_ROLE"
    not_member = client.put(f"/v1/channels/{general['id']}/permissions/{stranger.user_id}", json={"type": 1},
                            headers=owner.auth)
    assert not_member.json()["errors"][0]["code"] == "UNKNOWN_MEMBER"

    # The manager may deny what they hold, but not grant what they lack (BAN_MEMBERS).
    url = f"/v1/channels/{general['id']}/permissions/{guild['id']}"
    assert client.put(url, json={"type": 0, "deny": str(int(Permission.VIEW_CHANNEL))},
                      headers=manager.auth).status_code == 204
    too_much = client.put(url, json={"type": 0, "allow": str(int(Permission.BAN_MEMBERS))}, headers=manager.auth)
    assert too_much.status_code == 403
    assert client.get(f"/v1/channels/{general['id']}", headers=owner.auth).json()["permission_overwrites"][0][
        "deny"] == str(int(Permission.VIEW_CHANNEL))


def test_member_without_manage_channels(client, register, make_guild, add_member):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    general = _channels(guild)["general"]
    for response in (
        _create(client, member, guild, type=0, name="mine"),
        client.patch(f"/v1/channels/{general['id']}", json={"topic": "x"}, headers=member.auth),
        client.delete(f"/v1/channels/{general['id']}", headers=member.auth),
        client.patch(f"/v1/guilds/{guild['id']}/channels", json=[{"id": general["id"], "position": 3}],
                     headers=member.auth),
    ):
        assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"
    for response in (
        client.get(f"/v1/channels/{general['id']}", headers=stranger.auth),
        client.patch(f"/v1/channels/{general['id']}", json={"topic": "x"}, headers=stranger.auth),
        client.delete(f"/v1/channels/{general['id']}", headers=stranger.auth),
    ):
        assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_CHANNEL"
    assert client.get(f"/v1/channels/{general['id']}", headers=owner.auth).json()["topic"] is None


def test_overwrites_refuse_unknown_permission_bits(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    general = _channels(guild)["general"]
    response = client.put(f"/v1/channels/{general['id']}/permissions/{guild['id']}",
                          json={"type": 0, "allow": str(1 << 19)}, headers=owner.auth)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "allow", "code": "INVALID_PERMISSIONS_INTEGER",
                                          "message": "Unknown permission bits"}]
    created = _create(client, owner, guild, type=0, name="x",
                      permission_overwrites=[{"id": guild["id"], "type": 0, "deny": str(1 << 19)}])
    assert created.status_code == 400 and created.json()["errors"][0]["path"] == "permission_overwrites.0.deny"
    assert client.get(f"/v1/channels/{general['id']}", headers=owner.auth).json()["permission_overwrites"] == []


def test_administrator_cannot_be_set_on_a_channel(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    general = _channels(guild)["general"]
    response = client.put(f"/v1/channels/{general['id']}/permissions/{guild['id']}",
                          json={"type": 0, "allow": str(int(Permission.ADMINISTRATOR))}, headers=owner.auth)
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "allow"
    assert client.get(f"/v1/channels/{general['id']}", headers=owner.auth).json()["permission_overwrites"] == []


def test_reorder_cannot_unlock_a_hidden_channel(client, register, make_guild, add_member, published):
    """Found in review: lock_permissions let a MANAGE_CHANNELS member wipe a private channel's overwrites."""
    owner, manager = register(), register()
    guild = make_guild(owner)
    add_member(manager, guild)
    category = _channels(guild)["Text Channels"]
    secret = _create(client, owner, guild, type=0, name="secret", parent_id=category["id"],
                     permission_overwrites=[{"id": guild["id"], "type": 0, "deny": str(int(Permission.VIEW_CHANNEL))}]
                     ).json()
    role = client.post(f"/v1/guilds/{guild['id']}/roles",
                       json={"name": "Channels", "permissions": str(int(Permission.MANAGE_CHANNELS))},
                       headers=owner.auth).json()
    client.put(f"/v1/guilds/{guild['id']}/members/{manager.user_id}/roles/{role['id']}", headers=owner.auth)
    published.clear()
    attempt = client.patch(f"/v1/guilds/{guild['id']}/channels",
                           json=[{"id": secret["id"], "lock_permissions": True}], headers=manager.auth)
    assert attempt.status_code == 403
    assert client.get(f"/v1/channels/{secret['id']}", headers=manager.auth).status_code == 403
    assert len(client.get(f"/v1/channels/{secret['id']}", headers=owner.auth).json()["permission_overwrites"]) == 1
    assert published == []

    # The owner may sync it, and that is audited and published.
    assert client.patch(f"/v1/guilds/{guild['id']}/channels", json=[{"id": secret["id"], "lock_permissions": True}],
                        headers=owner.auth).status_code == 204
    assert client.get(f"/v1/channels/{secret['id']}", headers=owner.auth).json()["permission_overwrites"] == []
    assert [e.name for e in published] == ["CHANNEL_UPDATE_BULK"]


def test_positions_never_collide(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    category = _channels(guild)["Text Channels"]
    second = _create(client, owner, guild, type=0, name="second", parent_id=category["id"]).json()
    assert client.patch(f"/v1/channels/{second['id']}", json={"position": 0}, headers=owner.auth).status_code == 200
    siblings = [c for c in client.get(f"/v1/guilds/{guild['id']}/channels", headers=owner.auth).json()
                if c["parent_id"] == category["id"]]
    assert sorted((c["position"], c["name"]) for c in siblings) == [(0, "second"), (1, "general")]


def test_a_full_category_keeps_its_own_channels(client, register, make_guild, monkeypatch):
    monkeypatch.setattr(channels_service, "MAX_CATEGORY_CHANNELS", 1)
    owner = register()
    guild = make_guild(owner)
    general, category = _channels(guild)["general"], _channels(guild)["Text Channels"]
    same = client.patch(f"/v1/channels/{general['id']}", json={"parent_id": category["id"]}, headers=owner.auth)
    assert same.status_code == 200
    full = _create(client, owner, guild, type=0, name="more", parent_id=category["id"])
    assert full.status_code == 400 and full.json()["code"] == "MAX_CATEGORY_CHANNELS"
