"""Registration, login, new-IP protection, TOTP MFA, logout and sessions (openapi/auth.yaml)."""

from __future__ import annotations

import time
import uuid

import pyotp
import pytest

from tests.conftest import PASSWORD, unique_ip

LOGIN_ERRORS = [
    {"path": "email", "code": "INVALID_LOGIN"},
    {"path": "password", "code": "INVALID_LOGIN"},
]


def _email() -> str:
    return f"auth-{uuid.uuid4().hex[:12]}@example.com"


def _error_paths(response) -> dict[str, str]:
    return {e["path"]: e["code"] for e in response.json().get("errors", [])}


def login(client, email: str, ip: str, password: str = PASSWORD):
    return client.post("/v1/auth/login", json={"email": email, "password": password},
                       headers={"X-Forwarded-For": ip})


def outbox(client, email: str, kind: str = "ip_authorization") -> list[dict]:
    response = client.get("/v1/test/emails", params={"recipient": email})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["emails"] if e["type"] == kind]


def wrong_totp(secret: str) -> str:
    """A six-digit code that is valid in none of the windows the server accepts."""
    totp, now = pyotp.TOTP(secret), time.time()
    valid = {totp.at(now + step * 30) for step in (-2, -1, 0, 1, 2)}
    return next(code for code in (f"{n:06d}" for n in range(123456, 1000000, 7919)) if code not in valid)


# ---- register ---------------------------------------------------------------------------

def test_register_answers_token_user_id_and_user(client):
    ip = unique_ip()
    email = _email()
    response = client.post("/v1/auth/register", headers={"X-Forwarded-For": ip}, json={
        "email": email, "password": PASSWORD, "global_name": "River Song", "consent": True})
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"token", "user_id", "user"}
    assert data["token"].startswith("flx_") and len(data["token"]) > 20
    user = data["user"]
    assert user["id"] == data["user_id"]
    assert user["username"] == "River_Song"  # derived from global_name
    assert user["global_name"] == "River Song"
    assert len(user["discriminator"]) == 4 and user["discriminator"].isdigit()
    assert user["bot"] is False
    assert "email" not in user  # the partial user, not the private one

    me = client.get("/v1/users/@me", headers={"Authorization": data["token"], "X-Forwarded-For": ip})
    assert me.status_code == 200
    assert me.json()["id"] == data["user_id"]
    assert me.json()["email"] == email


def test_register_with_explicit_username_keeps_it(client):
    response = client.post("/v1/auth/register", headers={"X-Forwarded-For": unique_ip()}, json={
        "email": _email(), "password": PASSWORD, "global_name": "Someone Else", "username": "chosen_name"})
    assert response.status_code == 200, response.text
    assert response.json()["user"]["username"] == "chosen_name"


def test_register_same_username_twice_gets_distinct_discriminators(register, client):
    first, second = register(global_name="Twin"), register(global_name="Twin")
    tags = set()
    for account in (first, second):
        user = client.get("/v1/users/@me", headers=account.auth).json()
        assert user["username"] == "Twin"
        tags.add(user["discriminator"])
    assert len(tags) == 2


def test_register_email_is_unique_case_insensitively(client, register):
    register(email="Dup.Person@Example.com")
    response = client.post("/v1/auth/register", headers={"X-Forwarded-For": unique_ip()}, json={
        "email": "dup.person@EXAMPLE.COM", "password": PASSWORD, "global_name": "Dup"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_FORM_BODY"
    assert _error_paths(response) == {"email": "EMAIL_ALREADY_REGISTERED"}


@pytest.mark.parametrize("length, ok", [(7, False), (8, True), (256, True), (257, False)])
def test_register_password_length_bounds(client, length, ok):
    response = client.post("/v1/auth/register", headers={"X-Forwarded-For": unique_ip()}, json={
        "email": _email(), "password": "p" * length, "global_name": "Bounds"})
    if ok:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_FORM_BODY"
        assert _error_paths(response) == {"password": "BASE_TYPE_BAD_LENGTH"}


def test_register_reports_every_failing_field(client):
    response = client.post("/v1/auth/register", headers={"X-Forwarded-For": unique_ip()}, json={})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_FORM_BODY"
    assert _error_paths(response) == {"email": "BASE_TYPE_REQUIRED", "password": "BASE_TYPE_REQUIRED"}

    response = client.post("/v1/auth/register", headers={"X-Forwarded-For": unique_ip()},
                           json={"email": "not-an-email", "password": "short", "theme": "neon"})
    assert response.status_code == 400
    assert set(_error_paths(response)) == {"email", "password", "theme"}


# ---- login ------------------------------------------------------------------------------

def test_login_answers_a_new_working_token(client, register):
    account = register()
    response = login(client, account.email.upper(), account.ip)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["token"].startswith("flx_") and data["token"] != account.token
    assert data["user_id"] == account.user_id
    me = client.get("/v1/users/@me", headers={"Authorization": data["token"], "X-Forwarded-For": account.ip})
    assert me.status_code == 200 and me.json()["id"] == account.user_id


def test_wrong_password_and_unknown_email_answer_the_same(client, register):
    account = register()
    wrong = login(client, account.email, account.ip, password="not the password at all")
    unknown = login(client, _email(), account.ip)
    for response in (wrong, unknown):
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "INVALID_FORM_BODY"
        assert [{"path": e["path"], "code": e["code"]} for e in body["errors"]] == LOGIN_ERRORS
    assert wrong.json() == unknown.json()  # nothing tells which emails exist


def test_login_missing_fields_lists_both(client):
    response = client.post("/v1/auth/login", json={}, headers={"X-Forwarded-For": unique_ip()})
    assert response.status_code == 400
    assert _error_paths(response) == {"email": "BASE_TYPE_REQUIRED", "password": "BASE_TYPE_REQUIRED"}


# ---- new-IP protection ------------------------------------------------------------------

def test_login_from_new_address_needs_emailed_authorization(client, register):
    account = register()
    new_ip = unique_ip()

    blocked = login(client, account.email, new_ip)
    assert blocked.status_code == 403
    body = blocked.json()
    assert body["code"] == "IP_AUTHORIZATION_REQUIRED"
    ticket = body["ticket"]
    assert ticket
    assert body["email"].endswith("@example.com") and account.email not in body["email"]
    assert "token" not in body

    emails = outbox(client, account.email)
    assert len(emails) == 1
    assert emails[0]["to"] == account.email
    email_token = emails[0]["metadata"]["token"]
    assert email_token and email_token != ticket

    pending = client.get("/v1/auth/ip-authorization/poll", params={"ticket": ticket})
    assert pending.status_code == 200
    assert pending.json()["completed"] is False and pending.json()["token"] is None

    # The ticket is not the emailed secret: it cannot authorize the address by itself.
    assert client.post("/v1/auth/authorize-ip", json={"token": ticket}).status_code == 400

    assert client.post("/v1/auth/authorize-ip", json={"token": email_token}).status_code == 204

    first = client.get("/v1/auth/ip-authorization/poll", params={"ticket": ticket})
    assert first.status_code == 200
    data = first.json()
    assert data["completed"] is True
    assert data["token"].startswith("flx_")
    assert data["user_id"] == account.user_id and data["user"]["id"] == account.user_id
    me = client.get("/v1/users/@me", headers={"Authorization": data["token"], "X-Forwarded-For": new_ip})
    assert me.status_code == 200 and me.json()["id"] == account.user_id

    second = client.get("/v1/auth/ip-authorization/poll", params={"ticket": ticket})
    assert second.status_code == 200
    assert second.json()["completed"] is True
    assert second.json()["token"] is None

    direct = login(client, account.email, new_ip)
    assert direct.status_code == 200, direct.text
    assert direct.json()["token"].startswith("flx_")
    assert len(outbox(client, account.email)) == 1  # no further email for an authorized address


def test_ip_authorization_resend_has_a_cooldown(client, register):
    account = register()
    ticket = login(client, account.email, unique_ip()).json()["ticket"]
    response = client.post("/v1/auth/ip-authorization/resend", json={"ticket": ticket})
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "IP_AUTHORIZATION_RESEND_COOLDOWN"
    assert 0 < body["retry_after"] <= 30
    assert body["global"] is False
    assert int(response.headers["Retry-After"]) >= 1
    assert len(outbox(client, account.email)) == 1  # the cooldown sent nothing


def test_ip_authorization_rejects_bad_tokens_and_tickets(client):
    response = client.post("/v1/auth/authorize-ip", json={"token": "definitely-not-a-token"})
    assert response.status_code == 400
    assert _error_paths(response) == {"token": "INVALID_TOKEN"}

    poll = client.get("/v1/auth/ip-authorization/poll", params={"ticket": "no-such-ticket"})
    assert poll.status_code == 400
    resend = client.post("/v1/auth/ip-authorization/resend", json={"ticket": "no-such-ticket"})
    assert resend.status_code == 400


# ---- TOTP MFA ---------------------------------------------------------------------------

def _enable_totp(client, account) -> tuple[str, list[str]]:
    secret = pyotp.random_base32()
    response = client.post("/v1/users/@me/mfa/totp/enable", headers=account.auth, json={
        "secret": secret, "code": pyotp.TOTP(secret).now(), "password": PASSWORD})
    assert response.status_code == 200, response.text
    codes = [item["code"] for item in response.json()["backup_codes"]]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(item["consumed"] is False for item in response.json()["backup_codes"])
    return secret, codes


def next_code(secret: str) -> str:
    """A code the server has not accepted yet: enabling spent the current step, and the next step
    is inside the window whichever side of a 30-second boundary the server checks it on."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _mfa_ticket(client, account, ip=None) -> str:
    response = login(client, account.email, ip or account.ip)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa"] is True and body["totp"] is True and "token" not in body
    return body["ticket"]


def test_totp_enable_needs_password_and_a_valid_code(client, register):
    account = register()
    secret = pyotp.random_base32()
    no_password = client.post("/v1/users/@me/mfa/totp/enable", headers=account.auth,
                              json={"secret": secret, "code": next_code(secret)})
    assert no_password.status_code == 403
    assert no_password.json()["code"] == "SUDO_MODE_REQUIRED"
    bad_code = client.post("/v1/users/@me/mfa/totp/enable", headers=account.auth,
                           json={"secret": secret, "code": wrong_totp(secret), "password": PASSWORD})
    assert bad_code.status_code == 400
    assert _error_paths(bad_code) == {"code": "INVALID_MFA_CODE"}
    assert client.get("/v1/users/@me", headers=account.auth).json()["mfa_enabled"] is False


def test_totp_login_flow(client, register):
    account = register()
    secret, _codes = _enable_totp(client, account)
    me = client.get("/v1/users/@me", headers=account.auth).json()
    assert me["mfa_enabled"] is True and me["authenticator_types"] == [0]

    response = login(client, account.email, account.ip)
    assert response.status_code == 200
    body = response.json()
    assert body["mfa"] is True and body["totp"] is True and body["webauthn"] is False
    assert body["allowed_methods"] == ["totp"]
    assert body["ticket"] and "token" not in body

    wrong = client.post("/v1/auth/login/mfa/totp", json={"ticket": body["ticket"], "code": wrong_totp(secret)})
    assert wrong.status_code == 400
    assert _error_paths(wrong) == {"code": "INVALID_MFA_CODE"}

    done = client.post("/v1/auth/login/mfa/totp", json={"ticket": body["ticket"], "code": next_code(secret)},
                       headers={"X-Forwarded-For": account.ip})
    assert done.status_code == 200, done.text
    token = done.json()["token"]
    assert token.startswith("flx_") and done.json()["user_id"] == account.user_id
    assert client.get("/v1/users/@me", headers={"Authorization": token}).status_code == 200

    # A ticket finishes one login only.
    again = client.post("/v1/auth/login/mfa/totp", json={"ticket": body["ticket"], "code": next_code(secret)})
    assert again.status_code == 400


def test_a_totp_code_is_accepted_once(client, register):
    account = register()
    secret, _codes = _enable_totp(client, account)
    code = next_code(secret)
    first = client.post("/v1/auth/login/mfa/totp", json={"ticket": _mfa_ticket(client, account), "code": code},
                        headers={"X-Forwarded-For": account.ip})
    assert first.status_code == 200, first.text
    replay = client.post("/v1/auth/login/mfa/totp", json={"ticket": _mfa_ticket(client, account), "code": code},
                         headers={"X-Forwarded-For": account.ip})
    assert replay.status_code == 400
    assert _error_paths(replay) == {"code": "INVALID_MFA_CODE"}


def test_totp_login_with_unknown_ticket_is_400(client):
    response = client.post("/v1/auth/login/mfa/totp", json={"ticket": "no-such-ticket", "code": "123456"})
    assert response.status_code == 400
    assert _error_paths(response) == {"ticket": "INVALID_TOKEN"}


def test_mfa_skips_ip_authorization_and_authorizes_the_address(client, register):
    account = register()
    secret, _codes = _enable_totp(client, account)
    new_ip = unique_ip()
    ticket = _mfa_ticket(client, account, ip=new_ip)
    done = client.post("/v1/auth/login/mfa/totp", json={"ticket": ticket, "code": next_code(secret)},
                       headers={"X-Forwarded-For": new_ip})
    assert done.status_code == 200, done.text
    assert outbox(client, account.email) == []


def test_login_tickets_only_work_for_their_own_step(client, register):
    ip_account, mfa_account = register(), register()
    secret, _codes = _enable_totp(client, mfa_account)
    ip_ticket = login(client, ip_account.email, unique_ip()).json()["ticket"]
    mfa_ticket = _mfa_ticket(client, mfa_account)

    as_mfa = client.post("/v1/auth/login/mfa/totp", json={"ticket": ip_ticket, "code": next_code(secret)})
    assert as_mfa.status_code == 400
    assert _error_paths(as_mfa) == {"ticket": "INVALID_TOKEN"}
    as_ip = client.get("/v1/auth/ip-authorization/poll", params={"ticket": mfa_ticket})
    assert as_ip.status_code == 400


def test_backup_code_works_once(client, register):
    account = register()
    _secret, codes = _enable_totp(client, account)

    first = client.post("/v1/auth/login/mfa/totp", json={"ticket": _mfa_ticket(client, account), "code": codes[0]},
                        headers={"X-Forwarded-For": account.ip})
    assert first.status_code == 200, first.text
    assert first.json()["token"].startswith("flx_")

    reused = client.post("/v1/auth/login/mfa/totp", json={"ticket": _mfa_ticket(client, account), "code": codes[0]},
                         headers={"X-Forwarded-For": account.ip})
    assert reused.status_code == 400
    assert _error_paths(reused) == {"code": "INVALID_MFA_CODE"}

    other = client.post("/v1/auth/login/mfa/totp", json={"ticket": _mfa_ticket(client, account), "code": codes[1]},
                        headers={"X-Forwarded-For": account.ip})
    assert other.status_code == 200


def test_totp_disable_needs_a_valid_code(client, register):
    account = register()
    secret, _codes = _enable_totp(client, account)

    wrong = client.post("/v1/users/@me/mfa/totp/disable", headers=account.auth,
                        json={"code": wrong_totp(secret), "password": PASSWORD})
    assert wrong.status_code == 400
    assert _error_paths(wrong) == {"code": "INVALID_MFA_CODE"}
    assert client.get("/v1/users/@me", headers=account.auth).json()["mfa_enabled"] is True

    no_password = client.post("/v1/users/@me/mfa/totp/disable", headers=account.auth,
                              json={"code": next_code(secret)})
    assert no_password.status_code == 403
    assert no_password.json()["code"] == "SUDO_MODE_REQUIRED"

    ok = client.post("/v1/users/@me/mfa/totp/disable", headers=account.auth,
                     json={"code": next_code(secret), "password": PASSWORD})
    assert ok.status_code == 204
    assert client.get("/v1/users/@me", headers=account.auth).json()["mfa_enabled"] is False

    plain = login(client, account.email, account.ip)
    assert plain.status_code == 200
    assert plain.json()["token"].startswith("flx_")

    again = client.post("/v1/users/@me/mfa/totp/disable", headers=account.auth,
                        json={"code": next_code(secret), "password": PASSWORD})
    assert again.status_code == 400
    assert again.json()["code"] == "TWO_FA_NOT_ENABLED"


# ---- logout and sessions ----------------------------------------------------------------

def test_logout_ends_the_token_at_once(client, register):
    account = register()
    assert client.get("/v1/users/@me", headers=account.auth).status_code == 200
    assert client.post("/v1/auth/logout", headers=account.auth).status_code == 204
    after = client.get("/v1/users/@me", headers=account.auth)
    assert after.status_code == 401
    assert after.json()["code"] == "UNAUTHORIZED"
    assert client.post("/v1/auth/logout", headers=account.auth).status_code == 401


def test_logout_without_token_is_401(client):
    assert client.post("/v1/auth/logout").status_code == 401
    assert client.get("/v1/auth/sessions", headers={"Authorization": "flx_not-a-real-token"}).status_code == 401


def test_sessions_lists_every_session_and_marks_the_current(client, register):
    account = register(ip="203.0.113.7")
    second = login(client, account.email, account.ip).json()["token"]
    response = client.get("/v1/auth/sessions", headers={"Authorization": second, "X-Forwarded-For": account.ip})
    assert response.status_code == 200
    sessions = response.json()
    assert len(sessions) == 2
    assert sum(s["current"] for s in sessions) == 1
    assert len({s["id_hash"] for s in sessions}) == 2
    for s in sessions:
        assert s["masked_ip"] == "203.0.113.x"
        assert "203.0.113.7" not in str(s)
        assert set(s) >= {"id_hash", "client_info", "masked_ip", "approx_last_used_at", "current"}

    # The register session is "current" when asked with its own token.
    from_first = client.get("/v1/auth/sessions", headers=account.auth).json()
    current_first = next(s["id_hash"] for s in from_first if s["current"])
    current_second = next(s["id_hash"] for s in sessions if s["current"])
    assert current_first != current_second


def test_logout_chosen_sessions_needs_password(client, register):
    account = register()
    other = login(client, account.email, account.ip).json()["token"]
    other_headers = {"Authorization": other, "X-Forwarded-For": account.ip}
    sessions = client.get("/v1/auth/sessions", headers=account.auth).json()
    other_hash = next(s["id_hash"] for s in sessions if not s["current"])

    missing = client.post("/v1/auth/sessions/logout", headers=account.auth, json={"session_id_hashes": [other_hash]})
    assert missing.status_code == 403
    assert missing.json()["code"] == "SUDO_MODE_REQUIRED"
    wrong = client.post("/v1/auth/sessions/logout", headers=account.auth,
                        json={"session_id_hashes": [other_hash], "password": "wrong password here"})
    assert wrong.status_code == 400
    assert _error_paths(wrong) == {"password": "INVALID_PASSWORD"}
    assert client.get("/v1/users/@me", headers=other_headers).status_code == 200  # nothing ended yet

    ok = client.post("/v1/auth/sessions/logout", headers=account.auth,
                     json={"session_id_hashes": [other_hash], "password": PASSWORD})
    assert ok.status_code == 204
    assert client.get("/v1/users/@me", headers=other_headers).status_code == 401
    assert client.get("/v1/users/@me", headers=account.auth).status_code == 200
    remaining = client.get("/v1/auth/sessions", headers=account.auth).json()
    assert [s["current"] for s in remaining] == [True]


def test_logout_sessions_cannot_touch_another_users_sessions(client, register):
    alice, bob = register(), register()
    bob_hash = client.get("/v1/auth/sessions", headers=bob.auth).json()[0]["id_hash"]
    response = client.post("/v1/auth/sessions/logout", headers=alice.auth,
                           json={"session_id_hashes": [bob_hash], "password": PASSWORD})
    assert response.status_code == 204
    assert client.get("/v1/users/@me", headers=bob.auth).status_code == 200


# ---- username suggestions and SSO -------------------------------------------------------

def test_username_suggestions(client):
    response = client.post("/v1/auth/username-suggestions", json={"global_name": "River Song!"})
    assert response.status_code == 200
    suggestions = response.json()["suggestions"]
    assert suggestions[0] == "River_Song"
    assert 1 <= len(suggestions) <= 20
    assert len(set(suggestions)) == len(suggestions)
    assert all(s and len(s) <= 32 and all(c.isalnum() or c == "_" for c in s) for s in suggestions)

    missing = client.post("/v1/auth/username-suggestions", json={})
    assert missing.status_code == 400
    assert _error_paths(missing) == {"global_name": "BASE_TYPE_REQUIRED"}


def test_sso_status(client):
    response = client.get("/v1/auth/sso/status")
    assert response.status_code == 200
    assert response.json() == {"enabled": False, "enforced": False, "display_name": None, "redirect_uri": ""}


def test_sessions_describe_the_device_that_logged_in(client, register):
    account = register()
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
    token = client.post("/v1/auth/login", json={"email": account.email, "password": PASSWORD},
                        headers={"X-Forwarded-For": account.ip, "User-Agent": agent}).json()["token"]
    sessions = client.get("/v1/auth/sessions", headers={"Authorization": token, "X-Forwarded-For": account.ip}).json()
    current = next(s for s in sessions if s["current"])
    assert current["client_info"] == {"platform": "web", "os": "Linux", "browser": "Firefox", "location": None}


def test_username_suggestions_offer_one_spelling_per_case_insensitive_name(client):
    # "River" and "river" share one tag space; offering both would be offering the same thing twice.
    suggestions = client.post("/v1/auth/username-suggestions", json={"global_name": "River"}).json()["suggestions"]
    assert suggestions[0] == "River"
    assert len({s.lower() for s in suggestions}) == len(suggestions)
