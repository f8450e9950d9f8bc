"""Guilds (openapi/guilds.yaml): creation, settings, ownership, vanity URL, listing, leaving, deletion."""

from __future__ import annotations

import pytest

from service import members
from service.permissions import DEFAULT_EVERYONE, Permission
from tests.conftest import PASSWORD


def _bot_headers(client, owner) -> dict:
    app = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Helper"}).json()
    return {"Authorization": f"Bot {app['bot']['token']}"}


def test_create_builds_the_starting_roles_and_channels(client, register, published):
    owner = register()
    response = client.post("/v1/guilds", json={"name": "  Gardening Club "}, headers=owner.auth)
    assert response.status_code == 200, response.text
    guild = response.json()
    assert guild["name"] == "Gardening Club"
    assert guild["owner_id"] == owner.user_id
    assert guild["member_count"] == 1
    assert guild["permissions"] == str(sum(int(p) for p in Permission))  # the owner holds everything

    (everyone,) = guild["roles"]
    assert everyone["id"] == guild["id"] and everyone["name"] == "@everyone"
    assert everyone["position"] == 0 and everyone["permissions"] == str(DEFAULT_EVERYONE)

    channels = {c["name"]: c for c in guild["channels"]}
    assert set(channels) == {"Text Channels", "Voice Channels", "general", "General"}
    assert channels["Text Channels"]["type"] == 4 and channels["Voice Channels"]["type"] == 4
    assert channels["general"]["type"] == 0 and channels["general"]["parent_id"] == channels["Text Channels"]["id"]
    assert channels["General"]["type"] == 2 and channels["General"]["parent_id"] == channels["Voice Channels"]["id"]
    assert guild["system_channel_id"] == channels["general"]["id"]

    me = client.get(f"/v1/guilds/{guild['id']}/members/@me", headers=owner.auth).json()
    assert me["user"]["id"] == owner.user_id and me["roles"] == []

    names = [e.name for e in published]
    assert names == ["GUILD_MEMBER_ADD", "GUILD_CREATE"]
    created = published[-1]
    assert created.user_ids == (int(owner.user_id),) and created.data["id"] == guild["id"]


def test_bots_cannot_create_guilds(client, register):
    owner = register()
    response = client.post("/v1/guilds", json={"name": "Bot Land"}, headers=_bot_headers(client, owner))
    assert response.status_code == 403
    assert response.json()["code"] == "BOTS_CANNOT_CREATE_GUILDS"


def test_guild_count_is_limited(client, register, make_guild, monkeypatch):
    monkeypatch.setattr(members, "MAX_GUILDS", 2)
    owner = register()
    make_guild(owner)
    make_guild(owner)
    response = client.post("/v1/guilds", json={"name": "Third"}, headers=owner.auth)
    assert response.status_code == 400
    assert response.json()["code"] == "MAX_GUILDS"
    assert len(client.get("/v1/users/@me/guilds", headers=owner.auth).json()) == 2


def test_strangers_see_nothing(client, register, make_guild):
    owner, stranger = register(), register()
    guild = make_guild(owner)
    for method, path in [("get", ""), ("patch", ""), ("get", "/vanity-url"), ("get", "/audit-logs")]:
        kwargs = {"json": {"name": "Mine now"}} if method == "patch" else {}
        response = getattr(client, method)(f"/v1/guilds/{guild['id']}{path}", headers=stranger.auth, **kwargs)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "UNKNOWN_GUILD"
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["name"] == "Test Guild"
    assert client.get("/v1/guilds/99999999999999999", headers=owner.auth).json()["code"] == "UNKNOWN_GUILD"


def test_update_needs_manage_guild_and_is_audited(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)

    denied = client.patch(f"/v1/guilds/{guild['id']}", json={"name": "Hijacked"}, headers=member.auth)
    assert denied.status_code == 403 and denied.json()["code"] == "MISSING_PERMISSIONS"

    response = client.patch(f"/v1/guilds/{guild['id']}", json={"name": "Gardening Society", "afk_timeout": 600},
                            headers={**owner.auth, "X-Audit-Log-Reason": "new%20season"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Gardening Society" and response.json()["afk_timeout"] == 600
    assert client.get(f"/v1/guilds/{guild['id']}", headers=member.auth).json()["name"] == "Gardening Society"

    log = client.get(f"/v1/guilds/{guild['id']}/audit-logs", headers=owner.auth).json()
    (entry,) = [e for e in log["audit_log_entries"] if e["action_type"] == 1]
    assert entry["reason"] == "new season" and entry["user_id"] == owner.user_id
    assert {c["key"]: (c["old_value"], c["new_value"]) for c in entry["changes"]} == {
        "name": ("Test Guild", "Gardening Society"), "afk_timeout": (300, 600)}
    assert any(e.name == "GUILD_UPDATE" and e.guild_id == int(guild["id"]) for e in published)


def test_update_checks_referenced_channels(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    voice = next(c for c in guild["channels"] if c["type"] == 2)
    text = next(c for c in guild["channels"] if c["type"] == 0)
    bad = client.patch(f"/v1/guilds/{guild['id']}", json={"system_channel_id": voice["id"]}, headers=owner.auth)
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "system_channel_id"
    good = client.patch(f"/v1/guilds/{guild['id']}", json={"afk_channel_id": voice["id"], "system_channel_id": None},
                        headers=owner.auth)
    assert good.status_code == 200
    assert good.json()["afk_channel_id"] == voice["id"] and good.json()["system_channel_id"] is None
    unknown = client.patch(f"/v1/guilds/{guild['id']}", json={"rules_channel_id": "12345"}, headers=owner.auth)
    assert unknown.status_code == 400
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["rules_channel_id"] is None
    assert text["id"] != voice["id"]


def test_only_invites_disabled_feature_is_switchable(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    response = client.patch(f"/v1/guilds/{guild['id']}", json={"features": ["INVITES_DISABLED", "VERIFIED"]},
                            headers=owner.auth)
    assert response.json()["features"] == ["INVITES_DISABLED"]
    response = client.patch(f"/v1/guilds/{guild['id']}", json={"features": []}, headers=owner.auth)
    assert response.json()["features"] == []


def test_mfa_level_is_for_the_owner_with_password(client, register, make_guild, add_member):
    owner, admin = register(), register()
    guild = make_guild(owner)
    add_member(admin, guild)
    role = client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": "Admin", "permissions": "8"},
                       headers=owner.auth).json()
    client.put(f"/v1/guilds/{guild['id']}/members/{admin.user_id}/roles/{role['id']}", headers=owner.auth)

    by_admin = client.patch(f"/v1/guilds/{guild['id']}", json={"mfa_level": 1, "password": PASSWORD},
                            headers=admin.auth)
    assert by_admin.status_code == 403
    no_password = client.patch(f"/v1/guilds/{guild['id']}", json={"mfa_level": 1}, headers=owner.auth)
    assert no_password.status_code == 403 and no_password.json()["code"] == "SUDO_MODE_REQUIRED"
    ok = client.patch(f"/v1/guilds/{guild['id']}", json={"mfa_level": 1, "password": PASSWORD}, headers=owner.auth)
    assert ok.status_code == 200 and ok.json()["mfa_level"] == 1
    (entry,) = client.get(f"/v1/guilds/{guild['id']}/audit-logs?action_type=1", headers=owner.auth).json()[
        "audit_log_entries"]
    assert entry["changes"] == [{"key": "mfa_level", "old_value": 0, "new_value": 1}]


def test_delete_is_for_the_owner_with_password(client, register, make_guild, add_member, published):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    url = f"/v1/guilds/{guild['id']}/delete"

    assert client.post(url, json={"password": PASSWORD}, headers=stranger.auth).status_code == 404
    assert client.post(url, json={"password": PASSWORD}, headers=member.auth).status_code == 403
    wrong = client.post(url, json={"password": "not the password"}, headers=owner.auth)
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["code"] == "INVALID_PASSWORD"
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).status_code == 200

    published.clear()
    assert client.post(url, json={"password": PASSWORD}, headers=owner.auth).status_code == 204
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).status_code == 404
    assert client.get(f"/v1/guilds/{guild['id']}", headers=member.auth).status_code == 404
    assert client.get("/v1/users/@me/guilds", headers=member.auth).json() == []
    (deleted,) = [e for e in published if e.name == "GUILD_DELETE"]
    assert set(deleted.user_ids) == {int(owner.user_id), int(member.user_id)}


def test_transfer_ownership(client, register, make_guild, add_member):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    url = f"/v1/guilds/{guild['id']}/transfer-ownership"

    assert client.post(url, json={"new_owner_id": member.user_id, "password": PASSWORD},
                       headers=member.auth).status_code == 403
    not_member = client.post(url, json={"new_owner_id": stranger.user_id, "password": PASSWORD}, headers=owner.auth)
    assert not_member.status_code == 404 and not_member.json()["code"] == "UNKNOWN_MEMBER"

    response = client.post(url, json={"new_owner_id": int(member.user_id), "password": PASSWORD}, headers=owner.auth)
    assert response.status_code == 200, response.text
    assert response.json()["owner_id"] == member.user_id
    # The old owner is an ordinary member now and may leave; the new one may not.
    assert client.delete(f"/v1/users/@me/guilds/{guild['id']}", headers=member.auth).json()["code"] == \
        "OWNER_CANNOT_LEAVE_GUILD"
    assert client.delete(f"/v1/users/@me/guilds/{guild['id']}", headers=owner.auth).status_code == 204


def test_transfer_to_a_bot_is_refused(client, register, make_guild, app):
    from service.models import Application, Guild, User

    owner = register()
    guild = make_guild(owner)
    bot_app = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Helper"}).json()
    session = app.runtime.db.session
    try:
        members.add(app.runtime, session, session.get(Guild, int(guild["id"])),
                    session.get(User, int(bot_app["bot"]["id"])))
        session.commit()
        assert session.get(Application, int(bot_app["id"])) is not None
    finally:
        app.runtime.db.remove()
    response = client.post(f"/v1/guilds/{guild['id']}/transfer-ownership",
                           json={"new_owner_id": bot_app["bot"]["id"], "password": PASSWORD}, headers=owner.auth)
    assert response.status_code == 400 and response.json()["code"] == "CANNOT_TRANSFER_OWNERSHIP_TO_BOT"


def test_vanity_url(client, register, make_guild, add_member):
    owner, member, other_owner = register(), register(), register()
    guild, other = make_guild(owner), make_guild(other_owner)
    add_member(member, guild)
    url = f"/v1/guilds/{guild['id']}/vanity-url"

    assert client.get(url, headers=owner.auth).json() == {"code": None, "uses": 0}
    assert client.patch(url, json={"code": "garden"}, headers=member.auth).status_code == 403
    response = client.patch(url, json={"code": "Garden"}, headers=owner.auth)
    assert response.status_code == 200 and response.json() == {"code": "garden"}
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["vanity_url_code"] == "garden"

    taken = client.patch(f"/v1/guilds/{other['id']}/vanity-url", json={"code": "garden"}, headers=other_owner.auth)
    assert taken.status_code == 400 and taken.json()["errors"][0]["code"] == "ALREADY_TAKEN"
    invalid = client.patch(url, json={"code": "no spaces!"}, headers=owner.auth)
    assert invalid.status_code == 400
    assert client.patch(url, json={"code": None}, headers=owner.auth).json() == {"code": None}
    assert client.patch(f"/v1/guilds/{other['id']}/vanity-url", json={"code": "garden"},
                        headers=other_owner.auth).status_code == 200


def test_my_guilds_pages_by_id(client, register, make_guild):
    owner = register()
    ids = [make_guild(owner, f"Guild {n}")["id"] for n in range(5)]
    assert [g["id"] for g in client.get("/v1/users/@me/guilds", headers=owner.auth).json()] == ids
    first = client.get("/v1/users/@me/guilds?limit=2", headers=owner.auth).json()
    assert [g["id"] for g in first] == ids[:2]
    after = client.get(f"/v1/users/@me/guilds?limit=2&after={ids[1]}", headers=owner.auth).json()
    assert [g["id"] for g in after] == ids[2:4]
    before = client.get(f"/v1/users/@me/guilds?limit=2&before={ids[4]}", headers=owner.auth).json()
    assert [g["id"] for g in before] == ids[2:4]
    assert all(g["permissions"] for g in first)
    assert client.get("/v1/users/@me/guilds?limit=0", headers=owner.auth).status_code == 400


def test_leave(client, register, make_guild, add_member, published):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["member_count"] == 2
    published.clear()
    assert client.delete(f"/v1/users/@me/guilds/{guild['id']}", headers=member.auth).status_code == 204
    assert client.get(f"/v1/guilds/{guild['id']}", headers=member.auth).status_code == 404
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["member_count"] == 1
    assert [e.name for e in published] == ["GUILD_MEMBER_REMOVE", "GUILD_DELETE"]
    assert published[1].user_ids == (int(member.user_id),)
    again = client.delete(f"/v1/users/@me/guilds/{guild['id']}", headers=member.auth)
    assert again.status_code == 404


@pytest.mark.parametrize("limit", [1, 2])
def test_audit_log_filters_and_pages(client, register, make_guild, add_member, limit):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    for name in ("One", "Two", "Three"):
        client.patch(f"/v1/guilds/{guild['id']}", json={"name": name}, headers=owner.auth)
    client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": "Role"}, headers=owner.auth)
    url = f"/v1/guilds/{guild['id']}/audit-logs"

    assert client.get(url, headers=member.auth).status_code == 403
    everything = client.get(url, headers=owner.auth).json()["audit_log_entries"]
    assert [e["action_type"] for e in everything] == [30, 1, 1, 1]  # newest first
    updates = client.get(f"{url}?action_type=1&limit={limit}", headers=owner.auth).json()["audit_log_entries"]
    assert [e["id"] for e in updates] == [e["id"] for e in everything[1:1 + limit]]
    older = client.get(f"{url}?before={everything[1]['id']}", headers=owner.auth).json()["audit_log_entries"]
    assert [e["id"] for e in older] == [e["id"] for e in everything[2:]]
    newer = client.get(f"{url}?after={everything[2]['id']}&limit=1", headers=owner.auth).json()["audit_log_entries"]
    assert [e["id"] for e in newer] == [everything[1]["id"]]
    by_member = client.get(f"{url}?user_id={member.user_id}", headers=owner.auth).json()
    assert by_member["audit_log_entries"] == []
    assert client.get(f"{url}?user_id={owner.user_id}", headers=owner.auth).json()["users"][0]["id"] == owner.user_id


def _png_data_uri(size=(64, 64)) -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 120, 60)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_icon_is_decoded_and_stored(client, register, app):
    owner = register()
    response = client.post("/v1/guilds", json={"name": "Iconic", "icon": _png_data_uri()}, headers=owner.auth)
    assert response.status_code == 200, response.text
    guild = response.json()
    assert guild["icon"] and len(guild["icon"]) == 32
    stored = app.runtime.storage.get(f"icons/{guild['id']}/{guild['icon']}")
    assert stored is not None and stored.startswith(b"\x89PNG")

    not_image = client.patch(f"/v1/guilds/{guild['id']}", json={"icon": "aGVsbG8gd29ybGQ="}, headers=owner.auth)
    assert not_image.status_code == 400 and not_image.json()["errors"][0]["path"] == "icon"
    too_big = client.patch(f"/v1/guilds/{guild['id']}", json={"banner": _png_data_uri((5000, 10))}, headers=owner.auth)
    assert too_big.status_code == 400 and too_big.json()["errors"][0]["path"] == "banner"
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["icon"] == guild["icon"]

    cleared = client.patch(f"/v1/guilds/{guild['id']}", json={"icon": None}, headers=owner.auth)
    assert cleared.status_code == 200 and cleared.json()["icon"] is None


def test_deleting_a_guild_deletes_its_files(client, register, app):
    owner = register()
    guild = client.post("/v1/guilds", json={"name": "Short-lived", "icon": _png_data_uri()}, headers=owner.auth).json()
    emoji = client.post(f"/v1/guilds/{guild['id']}/emojis", json={"name": "leaf", "image": _png_data_uri((32, 32))},
                        headers=owner.auth).json()
    icon_key = f"icons/{guild['id']}/{guild['icon']}"
    storage = app.runtime.storage
    assert storage.get(icon_key) is not None and storage.get(f"emojis/{emoji['id']}") is not None
    deleted = client.post(f"/v1/guilds/{guild['id']}/delete", json={"password": PASSWORD}, headers=owner.auth)
    assert deleted.status_code == 204
    assert storage.get(icon_key) is None and storage.get(f"emojis/{emoji['id']}") is None


def test_cursors_beyond_the_largest_id_are_not_errors(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    huge = "9999999999999999999"
    for path in (f"/users/@me/guilds?after={huge}", f"/guilds/{guild['id']}/members?after={huge}",
                 f"/guilds/{guild['id']}/bans?after={huge}", f"/guilds/{guild['id']}/audit-logs?before={huge}",
                 f"/guilds/{guild['id']}/audit-logs?user_id={huge}",
                 f"/channels/{guild['system_channel_id']}/messages?after={huge}"):
        response = client.get(f"/v1{path}", headers=owner.auth)
        assert response.status_code == 200, (path, response.text)
    everything = client.get(f"/v1/users/@me/guilds?before={huge}", headers=owner.auth).json()
    assert [g["id"] for g in everything] == [guild["id"]]
