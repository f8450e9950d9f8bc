"""HTTP behaviour every route shares: request ids, the /v1 alias, error shapes, size limits, modes."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from service import instance
from service.app import create_app
from service.middleware import EdgeMiddleware
from tests.conftest import make_settings, unique_ip

JSON = "application/json"
PROD_SECRET = "x" * 40


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert body["code"] == code
    assert body["message"] and body["error"] == body["message"]
    assert "trace" not in body
    return body


# --- request ids -----------------------------------------------------------------------------


def test_sane_request_id_is_echoed(client):
    response = client.get("/v1/_health", headers={"X-Request-ID": "req-123.abc:XYZ_9"})
    assert response.headers["x-request-id"] == "req-123.abc:XYZ_9"


@pytest.mark.parametrize("offered", ["has spaces in it", "x" * 300, "semi;colon", "new\tline"])
def test_insane_request_id_is_replaced(client, offered):
    response = client.get("/v1/_health", headers={"X-Request-ID": offered})
    generated = response.headers["x-request-id"]
    assert generated != offered
    assert 1 <= len(generated) <= 128
    assert " " not in generated


def test_missing_request_id_is_generated_fresh(client):
    first = client.get("/v1/_health").headers["x-request-id"]
    second = client.get("/v1/_health").headers["x-request-id"]
    assert first and second and first != second
    # Exactly one id header, even on routes that answer through Flask.
    response = client.get("/v1/internal/telemetry")
    assert len(response.headers.get_list("x-request-id")) == 1


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/v1/no-such-route", {}, 404),
        ("delete", "/v1/users/@me", {}, 405),
        ("get", "/v1/users/@me", {}, 401),
        ("get", "/v1/users/a%0Ab", {}, 404),
        ("post", "/v1/auth/login", {"content": b"{", "headers": {"Content-Type": JSON}}, 400),
        ("post", "/v1/auth/login", {"content": b"x" * (1024 * 1024 + 1), "headers": {"Content-Type": JSON}}, 413),
    ],
)
def test_request_id_on_error_responses(client, method, path, kwargs, status):
    headers = {**kwargs.pop("headers", {}), "X-Request-ID": "trace-me-1"}
    response = client.request(method.upper(), path, headers=headers, **kwargs)
    assert response.status_code == status
    assert response.headers["x-request-id"] == "trace-me-1"
    assert response.headers["content-type"] == JSON


# --- content types and the /v1 alias ------------------------------------------------------------


def test_json_responses_have_exact_content_type(client, register):
    person = register()
    for response in (
        client.get("/v1/users/@me", headers=person.auth),
        client.get("/v1/internal/telemetry"),
        client.get("/v1/.well-known/fluxer"),
        client.get("/v1/openapi.json"),
        client.get("/v1/nope"),
        client.post("/v1/auth/login", json={}),
    ):
        assert response.headers["content-type"] == JSON, response.request.url


@pytest.mark.parametrize("path", ["/_health", "/internal/telemetry", "/.well-known/fluxer", "/openapi.json"])
def test_unversioned_alias(client, path):
    versioned, bare = client.get("/v1" + path), client.get(path)
    assert versioned.status_code == bare.status_code == 200
    assert versioned.headers["content-type"] == bare.headers["content-type"]
    if path != "/internal/telemetry":  # carries a clock
        assert versioned.content == bare.content


def test_unversioned_alias_for_authenticated_routes(client, register):
    person = register()
    versioned = client.get("/v1/users/@me", headers=person.auth)
    bare = client.get("/users/@me", headers=person.auth)
    assert versioned.status_code == bare.status_code == 200
    assert versioned.json() == bare.json()
    assert bare.json()["id"] == person.user_id
    changed = client.patch("/users/@me", json={"global_name": "Renamed"}, headers=person.auth)
    assert changed.status_code == 200, changed.text
    assert client.get("/v1/users/@me", headers=person.auth).json()["global_name"] == "Renamed"
    assert_error(client.get("/users/@me"), 401, "UNAUTHORIZED")


def test_alias_does_not_double_prefix(client):
    assert_error(client.get("/v1/v1/_health"), 404, "NOT_FOUND")


# --- routing errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nope", "/nope", "/v1/users/@me/nope", "/v2/_health", "/v1"])
def test_unknown_route(client, path):
    assert_error(client.get(path), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("DELETE", "/v1/users/@me", {"GET", "PATCH"}),
        ("PUT", "/users/@me", {"GET", "PATCH"}),
        ("GET", "/v1/auth/login", {"POST"}),
        ("POST", "/v1/users/123", {"GET"}),
        ("PATCH", "/v1/test/emails", {"GET", "DELETE"}),
    ],
)
def test_wrong_method(client, method, path, expected):
    response = client.request(method, path)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert expected <= allowed
    assert method not in allowed


# --- bodies ---------------------------------------------------------------------------------------


def test_unsupported_media_type(client):
    response = client.post("/v1/auth/login", content=b"email=a", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_body_over_limit_with_content_length(client):
    response = client.post("/v1/auth/register", content=b" " * (1024 * 1024 + 1), headers={"Content-Type": JSON})
    body = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert "1048576" in body["message"]


def test_body_at_limit_is_read(client):
    padded = json.dumps({"email": "a@example.com", "password": "password1"}).encode()
    padded += b" " * (1024 * 1024 - len(padded))
    response = client.post("/v1/auth/login", content=padded, headers={"Content-Type": JSON})
    assert response.status_code != 413
    assert response.status_code == 400  # unknown account: the body was parsed


def test_chunked_body_over_limit(client):
    def chunks():
        for _ in range(20):
            yield b" " * (100 * 1024)

    response = client.post("/v1/auth/register", content=chunks(), headers={"Content-Type": JSON})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_chunked_body_within_limit_is_accepted(client):
    ip = unique_ip()

    def chunks():
        yield b'{"email": "chunked@example.com", '
        yield b'"password": "correct horse battery staple", "consent": true}'

    response = client.post("/v1/auth/register", content=chunks(),
                           headers={"Content-Type": JSON, "X-Forwarded-For": ip})
    assert response.status_code == 200, response.text
    assert response.json()["token"]


def test_invalid_content_length(client):
    response = client.post("/v1/auth/login", content=b"{}", headers={"Content-Type": JSON, "Content-Length": "abc"})
    assert_error(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize("raw", [b"{", b'{"email": }', b"[1, 2", b"\xef\xbb", b"nul\x00"])
def test_malformed_json(client, raw):
    response = client.post("/v1/auth/login", content=raw, headers={"Content-Type": JSON})
    assert_error(response, 400, "BAD_REQUEST")


def test_non_utf8_json(client):
    raw = '{"email": "caf\u00e9@example.com", "password": "password1"}'.encode("latin-1")
    body = assert_error(client.post("/v1/auth/login", content=raw, headers={"Content-Type": JSON}), 400, "BAD_REQUEST")
    assert "UTF-8" in body["message"]


def test_deeply_nested_json_is_a_client_error(client):
    raw = b"[" * 100_000 + b"]" * 100_000
    response = client.post("/v1/auth/login", content=raw, headers={"Content-Type": JSON})
    assert response.status_code == 400


def test_missing_body(client):
    response = client.post("/v1/auth/login", headers={"Content-Type": JSON})
    assert response.status_code == 400
    assert response.headers["content-type"] == JSON


def test_validation_lists_every_failing_field(client):
    body = {"email": "not-an-email", "password": "short", "username": "bad name!", "global_name": "",
            "theme": "purple", "consent": "yes"}
    response = client.post("/v1/auth/register", json=body, headers={"X-Forwarded-For": unique_ip()})
    errors = assert_error(response, 400, "INVALID_FORM_BODY")["errors"]
    paths = {e["path"] for e in errors}
    assert {"email", "password", "username", "global_name", "theme", "consent"} <= paths
    for error in errors:
        assert set(error) == {"path", "code", "message"}
        assert error["code"] and error["message"]


def test_validation_lists_every_missing_field(client):
    errors = assert_error(client.post("/v1/auth/register", json={}), 400, "INVALID_FORM_BODY")["errors"]
    assert {("email", "BASE_TYPE_REQUIRED"), ("password", "BASE_TYPE_REQUIRED")} <= {(e["path"], e["code"]) for e in errors}


# --- paths with odd characters and ids -----------------------------------------------------------


@pytest.mark.parametrize("encoded", ["%0A", "%0D", "%00", "%09", "%1F", "%7F", "abc%0Adef", "123%0A"])
def test_control_characters_in_path(client, register, encoded):
    person = register()
    for prefix in ("/v1", ""):
        response = client.get(f"{prefix}/users/{encoded}", headers=person.auth)
        assert_error(response, 404, "NOT_FOUND")


def test_control_characters_in_route_path(client):
    assert_error(client.get("/v1/_health%0A"), 404, "NOT_FOUND")
    assert_error(client.get("/v1/users/@me%00"), 404, "NOT_FOUND")


@pytest.mark.parametrize("user_id", ["9223372036854775808", "9999999999999999999", "18446744073709551616",
                                     "123456789012345678901234567890"])
def test_id_out_of_range_is_not_found(client, register, user_id):
    person = register()
    response = client.get(f"/v1/users/{user_id}", headers=person.auth)
    assert response.status_code in (400, 404), response.text
    assert response.status_code != 500
    if len(user_id) <= 19:  # matches the Snowflake pattern, so it reaches the lookup
        assert response.status_code == 404
        assert response.json()["code"] in ("UNKNOWN_USER", "NOT_FOUND")


def test_largest_id_is_not_found(client, register):
    person = register()
    response = client.get("/v1/users/9223372036854775807", headers=person.auth)
    assert response.status_code == 404
    assert response.json()["code"] in ("UNKNOWN_USER", "NOT_FOUND")


# --- instance routes -------------------------------------------------------------------------------


def test_health(client):
    response = client.get("/_health")
    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["content-type"].startswith("text/plain")


def test_telemetry_shape(client):
    response = client.get("/v1/internal/telemetry")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"telemetry_enabled", "service", "timestamp"}
    assert body["telemetry_enabled"] is True
    assert body["service"] == "fluxer_api"
    from datetime import UTC, datetime

    moment = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert moment.tzinfo is not None
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 60


def test_well_known(client):
    response = client.get("/.well-known/fluxer")
    assert response.status_code == 200
    body = response.json()
    assert body["api_code_version"] == 1
    endpoints = body["endpoints"]
    assert {"api", "api_client", "api_public", "gateway", "media", "static_cdn", "marketing", "admin", "invite",
            "gift", "webapp"} <= set(endpoints)
    assert endpoints["api"].endswith("/v1")
    assert endpoints["gateway"].startswith(("ws://", "wss://"))
    assert body["registration"]["mode"] in ("open", "approval", "closed")
    assert body["sso"]["enabled"] is False
    assert isinstance(body["features"]["self_hosted"], bool)


def test_well_known_follows_settings(database_url):
    app = create_app(make_settings(database_url, PUBLIC_URL="https://chat.example.com/",
                                   GATEWAY_URL="wss://gw.example.com"))
    with TestClient(app) as client:
        body = client.get("/v1/.well-known/fluxer").json()
    assert body["endpoints"]["api"] == "https://chat.example.com/v1"
    assert body["endpoints"]["gateway"] == "wss://gw.example.com"


# --- modes -----------------------------------------------------------------------------------------


def _boom():
    raise RuntimeError("kaboom-secret-detail")


@pytest.mark.parametrize("env", ["development", "production", "test"])
def test_500_trace_only_in_development(database_url, monkeypatch, env):
    app = create_app(make_settings(database_url, FLUXER_ENV=env, FLUXER_SECRET_KEY=PROD_SECRET))
    monkeypatch.setattr(instance, "telemetry", _boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/internal/telemetry", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == JSON
    assert response.headers["x-request-id"] == "boom-1"
    body = response.json()
    assert body["code"] == "INTERNAL_SERVER_ERROR"
    assert body["error"] == body["message"]
    if env == "development":
        assert isinstance(body["trace"], list)
        assert "kaboom-secret-detail" in "".join(body["trace"])
    else:
        assert "trace" not in body
        assert "kaboom" not in response.text


@pytest.mark.parametrize("expose", [True, False])
def test_edge_last_resort_500(expose):
    async def broken(scope, receive, send):
        raise ValueError("edge-failure")

    edge = EdgeMiddleware(broken, max_body_bytes=1024, expose_traces=expose)
    client = TestClient(edge, raise_server_exceptions=False)  # no lifespan: only the request
    response = client.get("/v1/anything", headers={"X-Request-ID": "edge-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == JSON
    assert response.headers["x-request-id"] == "edge-1"
    body = response.json()
    assert body["code"] == "INTERNAL_SERVER_ERROR"
    assert ("trace" in body) is expose


def test_production_has_no_test_harness(database_url):
    app = create_app(make_settings(database_url, FLUXER_ENV="production", FLUXER_SECRET_KEY=PROD_SECRET))
    with TestClient(app) as client:
        assert_error(client.get("/v1/test/emails"), 404, "NOT_FOUND")
        assert_error(client.delete("/test/emails"), 404, "NOT_FOUND")
        assert_error(client.post("/v1/test/users/1/security-flags", json={}), 404, "NOT_FOUND")
        assert client.get("/v1/_health").status_code == 200


def test_harness_open_without_configured_token(client):
    response = client.get("/v1/test/emails")
    assert response.status_code == 200
    assert set(response.json()) == {"emails", "count"}


def test_harness_token(database_url):
    app = create_app(make_settings(database_url, FLUXER_TEST_TOKEN="harness-secret"))
    with TestClient(app) as client:
        assert_error(client.get("/v1/test/emails"), 403, "TEST_HARNESS_FORBIDDEN")
        assert_error(client.get("/v1/test/emails", headers={"X-Test-Token": "wrong"}), 403, "TEST_HARNESS_FORBIDDEN")
        assert_error(client.delete("/v1/test/emails"), 403, "TEST_HARNESS_FORBIDDEN")
        assert_error(client.post("/v1/test/users/1/security-flags", json={"set_flags": []}), 403,
                     "TEST_HARNESS_FORBIDDEN")
        allowed = client.get("/v1/test/emails", headers={"X-Test-Token": "harness-secret"})
        assert allowed.status_code == 200
        assert allowed.json()["count"] == len(allowed.json()["emails"])
        assert client.delete("/test/emails", headers={"X-Test-Token": "harness-secret"}).status_code == 204


def test_undeclared_method_on_a_literal_path_is_405_not_a_bad_parameter(client, register):
    # PATCH is declared on /oauth2/applications/{id}, but "@me" is its own literal path.
    account = register()
    response = client.patch("/v1/oauth2/applications/@me", json={}, headers=account.auth)
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["Allow"] == "GET, HEAD"


def test_plain_options_is_405_with_the_complete_allow(client, register):
    # Not a CORS preflight (no Origin): Connexion's own answer would list only "HEAD, GET".
    account = register()
    response = client.options("/v1/users/@me", headers=account.auth)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, PATCH"


def test_settings_accept_a_null_custom_status_emoji(client, register):
    account = register()
    body = {"custom_status": {"text": "", "expires_at": None, "emoji_id": None, "emoji_name": None}}
    response = client.patch("/v1/users/@me/settings", json=body, headers=account.auth)
    assert response.status_code == 200, response.text
    assert response.json()["custom_status"]["emoji_id"] is None


def test_application_redirect_uris_must_be_uris(client, register):
    account = register()
    response = client.post("/v1/oauth2/applications", json={"name": "Bot", "redirect_uris": [""]}, headers=account.auth)
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"].startswith("redirect_uris")


@pytest.mark.parametrize("body", ['{"content": "a\\u0000b"}', '{"content": "ok", "embeds": [{"title": "\\u0000"}]}',
                                  '{"a\\u0000": 1}'])
def test_nul_characters_in_a_body_are_refused_before_storage(client, register, make_guild, body):
    # PostgreSQL text cannot store NUL: it must be a 400 here, never a 500 from the database.
    owner = register()
    guild = make_guild(owner)
    channel = next(c["id"] for c in client.get(f"/v1/guilds/{guild['id']}/channels", headers=owner.auth).json()
                   if c["type"] == 0)
    response = client.post(f"/v1/channels/{channel}/messages", content=body.encode(),
                           headers={**owner.auth, "Content-Type": JSON})
    assert_error(response, 400, "BAD_REQUEST")
    assert client.get(f"/v1/channels/{channel}/messages", headers=owner.auth).json() == []


def test_an_escaped_backslash_before_u0000_is_ordinary_text(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = next(c["id"] for c in client.get(f"/v1/guilds/{guild['id']}/channels", headers=owner.auth).json()
                   if c["type"] == 0)
    response = client.post(f"/v1/channels/{channel}/messages", content=b'{"content": "path C:\\\\u0000"}',
                           headers={**owner.auth, "Content-Type": JSON})
    assert response.status_code == 200, response.text
    assert response.json()["content"] == "path C:\\u0000"


def test_nul_in_a_query_parameter_is_a_field_error(client, register):
    owner = register()
    response = client.get("/v1/users/check-tag", params={"username": "a\x00b", "discriminator": "0001"},
                          headers=owner.auth)
    body = assert_error(response, 400, "INVALID_FORM_BODY")
    assert any(e["path"] == "username" and "NUL" in e["message"] for e in body["errors"]), body
