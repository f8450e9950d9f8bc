"""Adding a bot to a guild through OAuth2 consent (POST /oauth2/authorize/consent, scope ``bot``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from service.permissions import Permission

SEND = int(Permission.SEND_MESSAGES)
BOT_ADD, ROLE_CREATE = 28, 30


def _application(client, owner, **fields) -> dict:
    response = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Weather Bot", **fields})
    assert response.status_code == 200, response.text
    return response.json()


def _bot_auth(application) -> dict:
    return {"Authorization": f"Bot {application['bot']['token']}"}


def _consent(client, account, application, guild, **fields):
    body = {"client_id": application["id"], "scope": "bot", "permissions": str(SEND), "guild_id": guild["id"], **fields}
    return client.post("/v1/oauth2/authorize/consent", headers=account.auth, json=body)


def _member(client, account, guild, owner) -> None:
    invite = client.post(f"/v1/channels/{guild['system_channel_id']}/invites", headers=owner.auth, json={"max_age": 0})
    assert client.post(f"/v1/invites/{invite.json()['code']}", headers=account.auth).status_code == 200


def _grant(client, owner, guild, account, permissions: int) -> None:
    role = client.post(f"/v1/guilds/{guild['id']}/roles", headers=owner.auth,
                       json={"name": "Managers", "permissions": str(permissions)}).json()
    added = client.put(f"/v1/guilds/{guild['id']}/members/{account.user_id}/roles/{role['id']}", headers=owner.auth)
    assert added.status_code == 204, added.text


def _managed_roles(client, owner, guild) -> list[dict]:
    roles = client.get(f"/v1/guilds/{guild['id']}/roles", headers=owner.auth).json()
    return [r for r in roles if r["name"] == "Weather_Bot"]


def test_consent_adds_the_bot_with_a_managed_role(client, app, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    application = _application(client, owner)
    bot_id = application["bot"]["id"]
    published.clear()

    response = _consent(client, owner, application, guild)
    assert response.status_code == 200, response.text
    redirect = urlsplit(response.json()["redirect_to"])
    assert response.json()["redirect_to"].startswith(app.runtime.settings.public_url + "/")
    assert parse_qs(redirect.query)["guild_id"] == [guild["id"]]

    as_bot = client.get(f"/v1/guilds/{guild['id']}", headers=_bot_auth(application))
    assert as_bot.status_code == 200, as_bot.text
    assert int(as_bot.json()["permissions"]) & SEND
    [role] = _managed_roles(client, owner, guild)
    assert role["permissions"] == str(SEND) and role["position"] == 1
    member = client.get(f"/v1/guilds/{guild['id']}/members/{bot_id}", headers=owner.auth).json()
    assert member["roles"] == [role["id"]] and member["user"]["bot"] is True

    [added] = [e for e in published if e.name == "GUILD_MEMBER_ADD"]
    assert added.data["user"]["id"] == bot_id and added.guild_id == int(guild["id"])
    [created] = [e for e in published if e.name == "GUILD_ROLE_CREATE"]
    assert created.data["role"]["id"] == role["id"] and created.guild_id == int(guild["id"])
    [updated] = [e for e in published if e.name == "GUILD_MEMBER_UPDATE"]
    assert updated.data["roles"] == [role["id"]]
    [joined] = [e for e in published if e.name == "GUILD_CREATE"]
    assert joined.user_ids == (int(bot_id),) and joined.data["id"] == guild["id"]

    log = client.get(f"/v1/guilds/{guild['id']}/audit-logs", headers=owner.auth).json()["audit_log_entries"]
    [bot_added] = [e for e in log if e["action_type"] == BOT_ADD]
    assert bot_added["target_id"] == bot_id and bot_added["user_id"] == owner.user_id
    assert [e["target_id"] for e in log if e["action_type"] == ROLE_CREATE] == [role["id"]]

    again = _consent(client, owner, application, guild)
    assert again.status_code == 400 and again.json()["code"] == "BOT_ALREADY_IN_GUILD"


def test_managed_role_goes_with_the_bot(client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    application = _application(client, owner)
    assert _consent(client, owner, application, guild).status_code == 200
    [role] = _managed_roles(client, owner, guild)
    published.clear()

    left = client.delete(f"/v1/users/@me/guilds/{guild['id']}", headers=_bot_auth(application))
    assert left.status_code == 204, left.text
    assert _managed_roles(client, owner, guild) == []
    [deleted] = [e for e in published if e.name == "GUILD_ROLE_DELETE"]
    assert deleted.data == {"guild_id": guild["id"], "role_id": role["id"]}

    # Back in, then kicked: the new role goes too; people's roles are untouched throughout.
    assert _consent(client, owner, application, guild).status_code == 200
    assert len(_managed_roles(client, owner, guild)) == 1
    kicked = client.delete(f"/v1/guilds/{guild['id']}/members/{application['bot']['id']}", headers=owner.auth)
    assert kicked.status_code == 204, kicked.text
    assert _managed_roles(client, owner, guild) == []
    assert [r["name"] for r in client.get(f"/v1/guilds/{guild['id']}/roles", headers=owner.auth).json()] == ["@everyone"]


def test_banned_bot_is_removed_and_cannot_be_added(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    application = _application(client, owner)
    assert _consent(client, owner, application, guild).status_code == 200
    banned = client.put(f"/v1/guilds/{guild['id']}/bans/{application['bot']['id']}", headers=owner.auth)
    assert banned.status_code == 204, banned.text
    assert _managed_roles(client, owner, guild) == []
    response = _consent(client, owner, application, guild)
    assert response.status_code == 403 and response.json()["code"] == "USER_BANNED_FROM_GUILD"


def test_redirect_uri_must_be_registered(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    application = _application(client, owner, redirect_uris=["https://example.com/callback?from=fluxer"])

    wrong = _consent(client, owner, application, guild, redirect_uri="https://evil.example/steal")
    assert wrong.status_code == 400
    assert [e["code"] for e in wrong.json()["errors"]] == ["INVALID_REDIRECT_URI"]
    assert client.get(f"/v1/guilds/{guild['id']}", headers=_bot_auth(application)).status_code == 404

    response = _consent(client, owner, application, guild, redirect_uri="https://example.com/callback?from=fluxer",
                        state="xyz")
    assert response.status_code == 200, response.text
    target = urlsplit(response.json()["redirect_to"])
    assert (target.scheme, target.netloc, target.path) == ("https", "example.com", "/callback")
    query = parse_qs(target.query)
    assert query["from"] == ["fluxer"] and query["state"] == ["xyz"] and query["guild_id"] == [guild["id"]]
    assert query["permissions"] == [str(SEND)]


def test_private_bot_only_for_its_owner(client, register, make_guild):
    developer, other = register(), register()
    application = _application(client, developer, bot_public=False)
    their_guild, own_guild = make_guild(other), make_guild(developer)

    response = _consent(client, other, application, their_guild)
    assert response.status_code == 403 and response.json()["code"] == "BOT_IS_PRIVATE"
    assert _consent(client, developer, application, own_guild).status_code == 200


def test_unknown_application_and_unsupported_scopes(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    application = _application(client, owner)

    response = _consent(client, owner, {"id": "1234567890123"}, guild)
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_APPLICATION"
    for scope in ("identify", "bot identify", "email guilds"):
        response = _consent(client, owner, application, guild, scope=scope)
        assert response.status_code == 400 and response.json()["code"] == "INVALID_SCOPE", scope
    assert _consent(client, owner, application, guild, scope="applications.commands bot").status_code == 200

    other = _application(client, owner, name="Other Bot")
    body = {"client_id": other["id"], "scope": "bot"}
    missing = client.post("/v1/oauth2/authorize/consent", headers=owner.auth, json=body)
    assert missing.status_code == 400 and missing.json()["errors"][0]["path"] == "guild_id"
    unknown_bits = _consent(client, owner, other, guild, permissions=str(1 << 60))
    assert unknown_bits.status_code == 400


def test_who_may_add_a_bot(client, register, make_guild):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    _member(client, member, guild, owner)
    application = _application(client, stranger)

    response = _consent(client, stranger, application, guild)
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_GUILD"
    response = _consent(client, member, application, guild)
    assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"

    _grant(client, owner, guild, member, Permission.MANAGE_GUILD)
    response = _consent(client, member, application, guild, permissions=str(int(Permission.BAN_MEMBERS)))
    assert response.status_code == 403 and response.json()["code"] == "MISSING_PERMISSIONS"  # not theirs to give
    assert client.get(f"/v1/guilds/{guild['id']}", headers=_bot_auth(application)).status_code == 404
    assert _consent(client, member, application, guild).status_code == 200  # SEND_MESSAGES: @everyone has it


def test_bots_cannot_consent(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    application = _application(client, owner)
    body = {"client_id": application["id"], "scope": "bot", "guild_id": guild["id"]}
    response = client.post("/v1/oauth2/authorize/consent", headers=_bot_auth(application), json=body)
    assert response.status_code == 401


def test_deleting_an_application_takes_its_bot_out_of_guilds(client, register, make_guild, published):
    owner = register()
    guild = make_guild(owner)
    app = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Short Lived"}).json()
    body = {"client_id": app["id"], "scope": "bot", "guild_id": guild["id"], "permissions": "2048"}
    assert client.post("/v1/oauth2/authorize/consent", json=body, headers=owner.auth).status_code == 200
    assert client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()["member_count"] == 2
    published.clear()
    assert client.delete(f"/v1/oauth2/applications/{app['id']}", headers=owner.auth).status_code == 204
    after = client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()
    assert after["member_count"] == 1 and [r["name"] for r in after["roles"]] == ["@everyone"]
    assert {"GUILD_MEMBER_REMOVE", "GUILD_ROLE_DELETE"} <= {e.name for e in published}


def test_concurrent_consents_add_the_bot_once(app, client, register, make_guild):
    import threading

    from service import applications
    from service.auth import Identity
    from service.errors import APIError

    owner = register()
    guild = make_guild(owner)
    bot_app = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Racer"}).json()
    body = {"client_id": bot_app["id"], "scope": "bot", "guild_id": guild["id"], "permissions": "0"}
    identity = Identity(int(owner.user_id), "session")
    outcomes, barrier = [], threading.Barrier(4)

    def consent():
        rt = app.runtime
        barrier.wait()
        try:
            applications.consent(rt, rt.db.session, identity, dict(body))
            outcomes.append("ok")
        except APIError as error:
            outcomes.append(error.code)
        finally:
            rt.db.remove()

    threads = [threading.Thread(target=consent) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["BOT_ALREADY_IN_GUILD"] * 3 + ["ok"]
    state = client.get(f"/v1/guilds/{guild['id']}", headers=owner.auth).json()
    assert state["member_count"] == 2 and len(state["roles"]) == 2
