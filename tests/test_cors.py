"""CORS: the Fluxer web app and configured origins may call the API from a browser; others may not."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from tests.conftest import make_settings

APP_ORIGIN = "https://app.fluxer.app"


def preflight(client, origin: str, path: str = "/v1/users/@me", method: str = "PATCH"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": "Authorization, Content-Type"})


@pytest.mark.parametrize("origin", [APP_ORIGIN, "https://fluxer.app"])
@pytest.mark.parametrize("path", ["/v1/users/@me", "/users/@me", "/v1/auth/login"])
def test_preflight_from_fluxer(client, origin, path):
    response = preflight(client, origin, path)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert "PATCH" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert response.headers["access-control-max-age"] == "600"


@pytest.mark.parametrize("origin", ["https://evil.example", "https://app.fluxer.app.evil.example",
                                    "http://app.fluxer.app", "null"])
def test_preflight_from_unlisted_origin(client, origin):
    response = preflight(client, origin)
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-methods" not in response.headers
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "FORBIDDEN"


def test_simple_request_from_fluxer(client):
    response = client.get("/v1/internal/telemetry", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "retry-after", "x-ratelimit-reset", "x-ratelimit-limit", "x-ratelimit-remaining",
            "x-ratelimit-reset-after", "x-ratelimit-bucket"} <= exposed
    assert "origin" in response.headers["vary"].lower()


def test_error_responses_carry_cors_headers(client):
    response = client.get("/v1/users/@me", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


def test_simple_request_from_unlisted_origin(client):
    response = client.get("/v1/internal/telemetry", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200  # the browser, not the server, withholds the body
    assert "access-control-allow-origin" not in response.headers


def test_configured_origins(database_url):
    app = create_app(make_settings(database_url, CORS_ORIGINS="https://chat.example.com, https://other.example"))
    with TestClient(app) as client:
        for origin in ("https://chat.example.com", "https://other.example", APP_ORIGIN):
            response = preflight(client, origin)
            assert response.status_code == 200, origin
            assert response.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-origin" not in preflight(client, "https://evil.example").headers
        simple = client.get("/v1/_health", headers={"Origin": "https://chat.example.com"})
        assert simple.headers["access-control-allow-origin"] == "https://chat.example.com"


def test_configured_origin_not_allowed_by_default(client):
    assert "access-control-allow-origin" not in preflight(client, "https://chat.example.com").headers
