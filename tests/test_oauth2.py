"""Applications and their bot users (openapi/oauth2.yaml)."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD


def _create(client, account, **fields) -> dict:
    response = client.post("/v1/oauth2/applications", headers=account.auth, json={"name": "Weather Bot", **fields})
    assert response.status_code == 200, response.text
    return response.json()


def _bot(token: str) -> dict:
    return {"Authorization": f"Bot {token}"}


def _error_paths(response) -> dict[str, str]:
    return {e["path"]: e["code"] for e in response.json().get("errors", [])}


def test_create_answers_the_secrets_once(client, register):
    owner = register()
    app = _create(client, owner, redirect_uris=["https://example.com/callback"], bot_public=False)
    assert app["name"] == "Weather Bot"
    assert app["redirect_uris"] == ["https://example.com/callback"]
    assert app["bot_public"] is False and app["bot_require_code_grant"] is False
    assert app["owner"]["id"] == owner.user_id and "email" not in app["owner"]
    assert app["client_secret"]
    bot_token = app["bot"]["token"]
    assert bot_token and not bot_token.startswith("flx_")
    assert app["bot"]["id"] != owner.user_id and app["bot"]["username"] == "Weather_Bot"

    as_bot = client.get("/v1/users/@me", headers=_bot(bot_token))
    assert as_bot.status_code == 200
    assert as_bot.json()["id"] == app["bot"]["id"] and as_bot.json()["bot"] is True

    # Never again: neither the list nor the single read carries the secrets.
    listed = client.get("/v1/oauth2/applications/@me", headers=owner.auth).json()
    single = client.get(f"/v1/oauth2/applications/{app['id']}", headers=owner.auth).json()
    for shown in (listed[0], single):
        assert "client_secret" not in shown
        assert "token" not in shown["bot"]
        assert client_secret_free(shown, app["client_secret"], bot_token)


def client_secret_free(obj, *secrets) -> bool:
    text = repr(obj)
    return not any(secret in text for secret in secrets)


def test_create_validates_the_body(client, register):
    owner = register()
    response = client.post("/v1/oauth2/applications", headers=owner.auth,
                           json={"name": "", "redirect_uris": ["not a uri"]})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_FORM_BODY"
    assert "name" in _error_paths(response)
    assert client.get("/v1/oauth2/applications/@me", headers=owner.auth).json() == []


def test_applications_me_as_owner_lists_only_own(client, register):
    owner, stranger = register(), register()
    first = _create(client, owner, name="First App")
    second = _create(client, owner, name="Second App")
    _create(client, stranger, name="Stranger App")

    response = client.get("/v1/oauth2/applications/@me", headers=owner.auth)
    assert response.status_code == 200
    apps = response.json()
    assert isinstance(apps, list)
    assert {a["id"] for a in apps} == {first["id"], second["id"]}
    assert {a["name"] for a in apps} == {"First App", "Second App"}
    for app in apps:
        assert app["owner"]["id"] == owner.user_id
        assert "client_secret" not in app and "token" not in app["bot"]


def test_applications_me_as_bot_is_its_own_application(client, register):
    owner = register()
    _create(client, owner, name="Other App")
    app = _create(client, owner, name="Bot App")
    response = client.get("/v1/oauth2/applications/@me", headers=_bot(app["bot"]["token"]))
    assert response.status_code == 200
    data = response.json()
    assert isinstance(data, dict)
    assert data["id"] == app["id"] and data["name"] == "Bot App"
    assert data["bot"]["id"] == app["bot"]["id"]
    assert data["owner"]["id"] == owner.user_id
    assert "client_secret" not in data and "token" not in data["bot"]


def test_someone_elses_application_is_404_and_untouched(client, register):
    owner, intruder = register(), register()
    app = _create(client, owner, name="Private App")
    url = f"/v1/oauth2/applications/{app['id']}"

    responses = [
        client.get(url, headers=intruder.auth),
        client.patch(url, headers=intruder.auth, json={"name": "Hijacked"}),
        client.delete(url, headers=intruder.auth),
        client.post(f"{url}/bot/reset-token", headers=intruder.auth, json={"password": PASSWORD}),
    ]
    for response in responses:
        assert response.status_code == 404
        body = response.json()
        assert body["code"] == "UNKNOWN_APPLICATION"
        assert "Private App" not in response.text and "name" not in body and "bot" not in body

    mine = client.get(url, headers=owner.auth)
    assert mine.status_code == 200 and mine.json()["name"] == "Private App"
    assert client.get("/v1/users/@me", headers=_bot(app["bot"]["token"])).status_code == 200


@pytest.mark.parametrize("app_id", ["1234567890123", "9223372036854775808"])
def test_unknown_application_is_404(client, register, app_id):
    owner = register()
    response = client.get(f"/v1/oauth2/applications/{app_id}", headers=owner.auth)
    assert response.status_code == 404
    assert response.json()["code"] == "UNKNOWN_APPLICATION"


def test_patch_changes_the_name(client, register):
    owner = register()
    app = _create(client, owner)
    url = f"/v1/oauth2/applications/{app['id']}"
    response = client.patch(url, headers=owner.auth, json={"name": "Weather Bot 2", "bot_public": False})
    assert response.status_code == 200
    assert response.json()["name"] == "Weather Bot 2" and response.json()["bot_public"] is False
    assert "client_secret" not in response.json() and "token" not in response.json()["bot"]
    again = client.get(url, headers=owner.auth).json()
    assert again["name"] == "Weather Bot 2" and again["bot_public"] is False
    assert again["redirect_uris"] == app["redirect_uris"]  # untouched fields stay


def test_reset_token_needs_password_and_replaces_the_token(client, register):
    owner = register()
    app = _create(client, owner)
    old = app["bot"]["token"]
    url = f"/v1/oauth2/applications/{app['id']}/bot/reset-token"

    missing = client.post(url, headers=owner.auth, json={})
    assert missing.status_code == 403
    assert missing.json()["code"] == "SUDO_MODE_REQUIRED"
    wrong = client.post(url, headers=owner.auth, json={"password": "not the password"})
    assert wrong.status_code == 400
    assert _error_paths(wrong) == {"password": "INVALID_PASSWORD"}
    assert client.get("/v1/users/@me", headers=_bot(old)).status_code == 200  # still the old token

    response = client.post(url, headers=owner.auth, json={"password": PASSWORD})
    assert response.status_code == 200
    new = response.json()["token"]
    assert new and new != old
    assert response.json()["bot"]["id"] == app["bot"]["id"] and response.json()["bot"]["token"] == new

    assert client.get("/v1/users/@me", headers=_bot(old)).status_code == 401
    me = client.get("/v1/users/@me", headers=_bot(new))
    assert me.status_code == 200 and me.json()["id"] == app["bot"]["id"]


def test_delete_ends_the_bot(client, register):
    owner = register()
    app = _create(client, owner)
    keep = _create(client, owner, name="Kept App")
    token = app["bot"]["token"]
    url = f"/v1/oauth2/applications/{app['id']}"

    assert client.delete(url, headers=owner.auth).status_code == 204
    assert client.get("/v1/users/@me", headers=_bot(token)).status_code == 401
    assert client.get(url, headers=owner.auth).status_code == 404
    assert client.get(f"/v1/users/{app['bot']['id']}", headers=owner.auth).status_code == 404
    assert [a["id"] for a in client.get("/v1/oauth2/applications/@me", headers=owner.auth).json()] == [keep["id"]]
    assert client.get("/v1/users/@me", headers=_bot(keep["bot"]["token"])).status_code == 200
    assert client.delete(url, headers=owner.auth).status_code == 404


def test_bare_bot_token_is_401(client, register):
    owner = register()
    token = _create(client, owner)["bot"]["token"]
    response = client.get("/v1/users/@me", headers={"Authorization": token})
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    assert client.get("/v1/oauth2/applications/@me", headers={"Authorization": token}).status_code == 401


def test_bot_cannot_use_session_only_routes(client, register):
    owner = register()
    app = _create(client, owner)
    headers = _bot(app["bot"]["token"])
    assert client.post("/v1/oauth2/applications", headers=headers, json={"name": "Spawn"}).status_code == 401
    assert client.get(f"/v1/oauth2/applications/{app['id']}", headers=headers).status_code == 401
    assert client.patch("/v1/users/@me", headers=headers, json={"bio": "hi"}).status_code == 401
