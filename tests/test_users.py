"""The current user, public profiles, settings, tags and account standing (openapi/users.yaml)."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

PUBLIC_KEYS = {"id", "username", "discriminator", "global_name", "avatar", "avatar_color", "bot", "system", "flags"}


def _error_paths(response) -> dict[str, str]:
    return {e["path"]: e["code"] for e in response.json().get("errors", [])}


def _login(client, account, password=PASSWORD):
    return client.post("/v1/auth/login", json={"email": account.email, "password": password},
                       headers={"X-Forwarded-For": account.ip})


def _set_flags(client, user_id: str, body: dict):
    return client.post(f"/v1/test/users/{user_id}/security-flags", json=body)


# ---- reading users ----------------------------------------------------------------------

def test_me_has_the_private_shape(client, register):
    account = register(global_name="River")
    response = client.get("/v1/users/@me", headers=account.auth)
    assert response.status_code == 200
    me = response.json()
    assert me["id"] == account.user_id
    assert me["email"] == account.email
    assert me["username"] == "River" and me["global_name"] == "River"
    assert me["verified"] is False and me["mfa_enabled"] is False and me["authenticator_types"] == []
    assert me["bot"] is False and me["is_staff"] is False
    assert set(me) >= PUBLIC_KEYS
    assert {"bio", "pronouns", "accent_color", "mention_flags", "password_last_changed_at",
            "required_actions", "premium_type", "phone"} <= set(me)
    assert me["password_last_changed_at"] is not None
    assert "password_hash" not in me and "totp_secret" not in me


def test_me_without_token_is_401(client):
    response = client.get("/v1/users/@me")
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"


def test_other_user_has_the_public_shape_only(client, register):
    viewer, target = register(), register(global_name="Target Person")
    response = client.get(f"/v1/users/{target.user_id}", headers=viewer.auth)
    assert response.status_code == 200
    user = response.json()
    assert set(user) == PUBLIC_KEYS
    assert "email" not in user
    assert user["id"] == target.user_id
    assert user["username"] == "Target_Person" and user["global_name"] == "Target Person"


def test_own_id_through_the_public_route_is_public_too(client, register):
    account = register()
    response = client.get(f"/v1/users/{account.user_id}", headers=account.auth)
    assert response.status_code == 200
    assert set(response.json()) == PUBLIC_KEYS


def test_unknown_user_is_404(client, register):
    account = register()
    response = client.get("/v1/users/1234567890123", headers=account.auth)
    assert response.status_code == 404
    assert response.json()["code"] == "UNKNOWN_USER"


@pytest.mark.parametrize("user_id", ["9223372036854775808", "9999999999999999999"])
def test_user_id_beyond_64_bits_is_404_not_500(client, register, user_id):
    account = register()
    response = client.get(f"/v1/users/{user_id}", headers=account.auth)
    assert response.status_code == 404
    assert response.json()["code"] == "UNKNOWN_USER"


def test_malformed_user_id_is_400(client, register):
    account = register()
    response = client.get("/v1/users/not-a-number", headers=account.auth)
    assert response.status_code == 400


def test_public_profile_needs_a_token(client, register):
    account = register()
    assert client.get(f"/v1/users/{account.user_id}").status_code == 401


# ---- changing the account ---------------------------------------------------------------

def test_patch_profile_fields(client, register):
    account, viewer = register(), register()
    changes = {"global_name": "New Name", "bio": "Spoilers.", "pronouns": "she/her", "accent_color": 0x336699,
               "timezone": "Europe/London", "mention_flags": 2}
    response = client.patch("/v1/users/@me", headers=account.auth, json=changes)
    assert response.status_code == 200, response.text
    for key, value in changes.items():
        assert response.json()[key] == value
    me = client.get("/v1/users/@me", headers=account.auth).json()
    for key, value in changes.items():
        assert me[key] == value
    public = client.get(f"/v1/users/{account.user_id}", headers=viewer.auth).json()
    assert public["global_name"] == "New Name"
    assert "bio" not in public

    cleared = client.patch("/v1/users/@me", headers=account.auth, json={"bio": None})
    assert cleared.status_code == 200 and cleared.json()["bio"] is None


def test_patch_profile_validates_every_field(client, register):
    account = register()
    response = client.patch("/v1/users/@me", headers=account.auth,
                            json={"bio": "x" * 321, "accent_color": -1, "mention_flags": 7})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_FORM_BODY"
    assert set(_error_paths(response)) == {"bio", "accent_color", "mention_flags"}
    assert client.get("/v1/users/@me", headers=account.auth).json()["bio"] is None


@pytest.mark.parametrize("change", [{"email": "changed@example.com"}, {"new_password": "an entirely new password"}])
def test_sensitive_changes_need_the_password(client, register, change):
    account = register()
    missing = client.patch("/v1/users/@me", headers=account.auth, json=change)
    assert missing.status_code == 403
    assert missing.json()["code"] == "SUDO_MODE_REQUIRED"
    wrong = client.patch("/v1/users/@me", headers=account.auth, json={**change, "password": "not my password"})
    assert wrong.status_code == 400
    assert _error_paths(wrong) == {"password": "INVALID_PASSWORD"}
    me = client.get("/v1/users/@me", headers=account.auth).json()
    assert me["email"] == account.email
    assert _login(client, account).status_code == 200  # the old password still works


def test_email_change_with_password(client, register):
    account = register()
    response = client.patch("/v1/users/@me", headers=account.auth,
                            json={"email": "Moved.Here@Example.com", "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "moved.here@example.com"
    assert response.json()["verified"] is False
    login = client.post("/v1/auth/login", json={"email": "moved.here@example.com", "password": PASSWORD},
                        headers={"X-Forwarded-For": account.ip})
    assert login.status_code == 200


def test_email_change_to_a_taken_address_is_400(client, register):
    account, other = register(), register()
    response = client.patch("/v1/users/@me", headers=account.auth,
                            json={"email": other.email.upper(), "password": PASSWORD})
    assert response.status_code == 400
    assert "email" in _error_paths(response)
    assert client.get("/v1/users/@me", headers=account.auth).json()["email"] == account.email


def test_new_password_ends_other_sessions_only(client, register):
    account = register()
    current = _login(client, account).json()["token"]
    current_headers = {"Authorization": current, "X-Forwarded-For": account.ip}
    new_password = "a brand new passphrase"

    response = client.patch("/v1/users/@me", headers=current_headers,
                            json={"password": PASSWORD, "new_password": new_password})
    assert response.status_code == 200, response.text

    assert client.get("/v1/users/@me", headers=account.auth).status_code == 401  # the other session
    assert client.get("/v1/users/@me", headers=current_headers).status_code == 200  # this one
    sessions = client.get("/v1/auth/sessions", headers=current_headers).json()
    assert [s["current"] for s in sessions] == [True]

    assert _login(client, account).status_code == 400
    fresh = _login(client, account, password=new_password)
    assert fresh.status_code == 200 and fresh.json()["token"].startswith("flx_")


# ---- settings ---------------------------------------------------------------------------

def test_settings_defaults(client, register):
    account = register()
    response = client.get("/v1/users/@me/settings", headers=account.auth)
    assert response.status_code == 200
    settings = response.json()
    assert settings["status"] == "online"
    assert settings["theme"] == "dark"
    assert settings["locale"] == "en-US"
    assert settings["developer_mode"] is False
    assert settings["afk_timeout"] == 600
    assert settings["guild_folders"] == [] and settings["custom_status"] is None


def test_register_theme_becomes_the_setting(client, register):
    account = register(theme="light")
    assert client.get("/v1/users/@me/settings", headers=account.auth).json()["theme"] == "light"


def test_settings_patch_merges(client, register):
    account = register()
    first = client.patch("/v1/users/@me/settings", headers=account.auth,
                         json={"theme": "light", "developer_mode": True})
    assert first.status_code == 200
    assert first.json()["theme"] == "light" and first.json()["developer_mode"] is True
    assert first.json()["locale"] == "en-US"

    second = client.patch("/v1/users/@me/settings", headers=account.auth, json={"locale": "fr", "afk_timeout": 300})
    assert second.status_code == 200
    settings = client.get("/v1/users/@me/settings", headers=account.auth).json()
    assert settings["theme"] == "light" and settings["developer_mode"] is True  # kept
    assert settings["locale"] == "fr" and settings["afk_timeout"] == 300  # changed
    assert settings["status"] == "online"  # still the default


def test_settings_patch_rejects_invalid_values(client, register):
    account = register()
    response = client.patch("/v1/users/@me/settings", headers=account.auth,
                            json={"theme": "neon", "afk_timeout": 5})
    assert response.status_code == 400
    assert set(_error_paths(response)) == {"theme", "afk_timeout"}
    assert client.get("/v1/users/@me/settings", headers=account.auth).json()["theme"] == "dark"


# ---- tags -------------------------------------------------------------------------------

def test_check_tag(client, register):
    account = register(global_name="Tag Owner")
    me = client.get("/v1/users/@me", headers=account.auth).json()
    tag = me["discriminator"]
    free = f"{(int(tag) % 9999) + 1:04d}"

    taken = client.get("/v1/users/check-tag", headers=account.auth,
                       params={"username": "Tag_Owner", "discriminator": tag})
    assert taken.status_code == 200 and taken.json() == {"taken": True}
    other_case = client.get("/v1/users/check-tag", headers=account.auth,
                            params={"username": "tag_owner", "discriminator": str(int(tag))})
    assert other_case.json() == {"taken": True}
    available = client.get("/v1/users/check-tag", headers=account.auth,
                           params={"username": "Tag_Owner", "discriminator": free})
    assert available.status_code == 200 and available.json() == {"taken": False}
    unknown_name = client.get("/v1/users/check-tag", headers=account.auth,
                              params={"username": "nobody_has_this", "discriminator": tag})
    assert unknown_name.json() == {"taken": False}

    invalid = client.get("/v1/users/check-tag", headers=account.auth,
                         params={"username": "bad name!", "discriminator": "12345"})
    assert invalid.status_code == 400
    assert set(_error_paths(invalid)) == {"username", "discriminator"}


# ---- token forms ------------------------------------------------------------------------

def test_session_token_with_bot_prefix_is_401(client, register):
    account = register()
    response = client.get("/v1/users/@me", headers={"Authorization": f"Bot {account.token}",
                                                    "X-Forwarded-For": account.ip})
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"


# ---- account standing (test harness flags) ----------------------------------------------

def test_pending_manual_verification_blocks_all_but_auth(client, register):
    account = register()
    response = _set_flags(client, account.user_id, {"pending_manual_verification": True})
    assert response.status_code == 200
    assert response.json()["success"] is True and response.json()["updated"] is True

    me = client.get("/v1/users/@me", headers=account.auth)
    assert me.status_code == 403
    assert me.json()["code"] == "ACCOUNT_SUSPICIOUS_ACTIVITY"
    assert client.patch("/v1/users/@me/settings", headers=account.auth, json={"theme": "light"}).status_code == 403

    assert client.get("/v1/auth/sessions", headers=account.auth).status_code == 200
    assert client.post("/v1/auth/logout", headers=account.auth).status_code == 204
    assert client.get("/v1/auth/sessions", headers=account.auth).status_code == 401


def test_clearing_pending_manual_verification_restores_access(client, register):
    account = register()
    _set_flags(client, account.user_id, {"pending_manual_verification": True})
    assert client.get("/v1/users/@me", headers=account.auth).status_code == 403
    cleared = _set_flags(client, account.user_id, {"pending_manual_verification": False})
    assert cleared.status_code == 200 and cleared.json()["updated"] is True
    assert client.get("/v1/users/@me", headers=account.auth).status_code == 200


def test_suspicious_activity_flag_blocks_me(client, register):
    account = register()
    response = _set_flags(client, account.user_id, {"suspicious_activity_flag_names": ["REQUIRE_VERIFIED_EMAIL"]})
    assert response.status_code == 200
    assert response.json()["suspicious_activity_flags"] == 1

    me = client.get("/v1/users/@me", headers=account.auth)
    assert me.status_code == 403
    assert me.json()["code"] == "ACCOUNT_SUSPICIOUS_ACTIVITY"
    assert me.json()["suspicious_activity_flags"] == 1
    assert client.post("/v1/auth/logout", headers=account.auth).status_code == 204


def test_other_users_flags_do_not_block_me(client, register):
    flagged, bystander = register(), register()
    _set_flags(client, flagged.user_id, {"pending_manual_verification": True})
    assert client.get("/v1/users/@me", headers=bystander.auth).status_code == 200


def test_unknown_flag_name_is_400(client, register):
    account = register()
    response = _set_flags(client, account.user_id, {"suspicious_activity_flag_names": ["NOT_A_FLAG"]})
    # The spec's enum or the service's own check may answer; either names the field.
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_FORM_BODY"
    assert [p.split(".")[0] for p in _error_paths(response)] == ["suspicious_activity_flag_names"]
    unknown_user_flag = _set_flags(client, account.user_id, {"set_flags": ["NOT_A_FLAG"]})
    assert unknown_user_flag.status_code == 400
    assert [p.split(".")[0] for p in _error_paths(unknown_user_flag)] == ["set_flags"]
    assert client.get("/v1/users/@me", headers=account.auth).status_code == 200  # nothing was applied


def test_flags_for_unknown_user_are_404(client):
    response = _set_flags(client, "1234567890123", {"pending_manual_verification": True})
    assert response.status_code == 404
    assert response.json()["code"] == "UNKNOWN_USER"
    huge = _set_flags(client, "9223372036854775808", {"pending_manual_verification": True})
    assert huge.status_code == 404
