"""Rate limits: opt-in in test mode, per-client buckets, the 429 shape, and Redis-shared budgets."""

from __future__ import annotations

import math
import os
import time

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.ratelimit import TEST_OPT_IN_HEADER, RedisCounters
from tests.conftest import make_settings, unique_ip

LOGIN = {"email": "nobody@example.com", "password": "not the password"}
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-reset-after",
                "x-ratelimit-bucket")


def limited(ip: str | None = None) -> dict:
    return {TEST_OPT_IN_HEADER: "true", "X-Forwarded-For": ip or unique_ip()}


def login(client, headers):
    return client.post("/v1/auth/login", json=LOGIN, headers=headers)


def assert_rate_limited(response, *, is_global: bool):
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == "RATE_LIMITED"
    assert body["message"] and body["error"] == body["message"]
    assert body["global"] is is_global
    # Discord libraries tell a global limit from a route's by this header alone.
    assert response.headers.get("x-ratelimit-global") == ("true" if is_global else None)
    assert response.headers["x-ratelimit-scope"] == "user"
    assert isinstance(body["retry_after"], int | float)
    assert 0 <= body["retry_after"] <= 10  # never longer than the window
    # The header is whole seconds, rounded up: waiting that long is always enough.
    assert int(response.headers["retry-after"]) == max(1, math.ceil(body["retry_after"]))
    assert float(response.headers["x-ratelimit-reset-after"]) == pytest.approx(body["retry_after"], abs=0.05)
    for name in RATE_HEADERS:
        assert name in response.headers, name
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-request-id"]
    return body


def test_login_bucket(client):
    headers = limited()
    for n in range(10):
        response = login(client, headers)
        assert response.status_code == 400, (n, response.text)  # wrong credentials, but served
        assert response.headers["x-ratelimit-bucket"] == "auth_login"
        assert response.headers["x-ratelimit-limit"] == "10"
        assert int(response.headers["x-ratelimit-remaining"]) == 9 - n
    blocked = login(client, headers)
    body = assert_rate_limited(blocked, is_global=False)
    assert body["retry_after"] > 5  # the ten requests took far less than the 10 s window
    assert blocked.headers["x-ratelimit-bucket"] == "auth_login"
    assert blocked.headers["x-ratelimit-limit"] == "10"

    # Another address has its own bucket.
    other = login(client, limited())
    assert other.status_code == 400
    assert other.headers["x-ratelimit-remaining"] == "9"
    # The same address is still limited, even on the unversioned path and with a valid body shape.
    assert login(client, headers).status_code == 429
    assert client.post("/auth/login", json=LOGIN, headers=headers).status_code == 429
    # Other routes for the blocked address keep their own buckets.
    assert client.get("/v1/internal/telemetry", headers=headers).status_code == 200


def test_successful_logins_count_too(client, register):
    person = register()
    headers = limited(person.ip)
    body = {"email": person.email, "password": "correct horse battery staple"}
    statuses = [client.post("/v1/auth/login", json=body, headers=headers).status_code for _ in range(11)]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429


def test_without_opt_in_nothing_is_limited(client):
    ip = unique_ip()
    for _ in range(15):
        response = login(client, {"X-Forwarded-For": ip})
        assert response.status_code == 400
        assert "x-ratelimit-remaining" not in response.headers
    for value in ("false", "1", ""):
        assert login(client, {"X-Forwarded-For": ip, TEST_OPT_IN_HEADER: value}).status_code == 400
    # The exempt requests were not counted: the opted-in budget is whole.
    first = login(client, limited(ip))
    assert first.headers["x-ratelimit-remaining"] == "9"


def test_opt_in_is_case_insensitive(client):
    response = login(client, {TEST_OPT_IN_HEADER: "TRUE", "X-Forwarded-For": unique_ip()})
    assert response.headers["x-ratelimit-bucket"] == "auth_login"


def test_headers_on_normal_responses(client, register):
    person = register()
    headers = {**person.auth, TEST_OPT_IN_HEADER: "true"}
    first = client.get("/v1/users/@me", headers=headers)
    second = client.get("/v1/users/@me", headers=headers)
    assert first.status_code == second.status_code == 200
    for name in RATE_HEADERS:
        assert name in first.headers, name
    assert "retry-after" not in first.headers  # only a 429 tells the client to wait
    assert int(second.headers["x-ratelimit-remaining"]) == int(first.headers["x-ratelimit-remaining"]) - 1
    assert int(first.headers["x-ratelimit-limit"]) > 0
    reset = float(first.headers["x-ratelimit-reset"])
    assert time.time() - 1 <= reset <= time.time() + 3600
    assert 0 <= float(first.headers["x-ratelimit-reset-after"]) <= 3600
    assert first.headers["x-ratelimit-bucket"]

    telemetry = client.get("/v1/internal/telemetry", headers=limited())
    assert telemetry.status_code == 200
    assert telemetry.headers["x-ratelimit-bucket"] != first.headers["x-ratelimit-bucket"]


def test_headers_on_handler_errors(client):
    response = login(client, limited())
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_FORM_BODY"
    for name in RATE_HEADERS:
        assert name in response.headers, name


def test_global_limit(client):
    headers = limited()
    paths = ["/v1/internal/telemetry", "/v1/.well-known/fluxer", "/v1/_health"]  # spread over route buckets
    blocked = None
    for _attempt in range(3):  # a one-second window: retry if the burst straddled a boundary
        statuses = []
        for n in range(51):
            response = client.get(paths[n % len(paths)], headers=headers)
            statuses.append(response.status_code)
            if response.status_code == 429:
                blocked = response
                break
        if blocked is not None:
            break
        time.sleep(1)
    if blocked is None:
        pytest.skip("the machine is too slow to send 51 requests within one second")
    body = assert_rate_limited(blocked, is_global=True)
    assert blocked.headers["x-ratelimit-bucket"] == "global"
    assert blocked.headers["x-ratelimit-limit"] == "50"
    assert body["retry_after"] <= 1
    assert blocked.headers["retry-after"] == "1"
    assert statuses.count(200) >= 1


def test_production_limits_without_opt_in(database_url):
    app = create_app(make_settings(database_url, FLUXER_ENV="production", FLUXER_SECRET_KEY="x" * 40))
    with TestClient(app, client=(unique_ip(), 40000)) as client:
        statuses = [login(client, {}).status_code for _ in range(11)]
        spoofed = login(client, {"X-Forwarded-For": unique_ip()})  # an untrusted peer cannot pick its key
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    assert spoofed.status_code == 429


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_instances_share_budget_through_redis(database_url):
    settings = make_settings(database_url)
    first, second = create_app(settings), create_app(settings)
    assert first is not second
    headers = limited()
    with TestClient(first) as a, TestClient(second) as b:
        statuses = []
        for n in range(10):
            statuses.append(login(a if n % 2 else b, headers).status_code)
        assert statuses == [400] * 10
        assert_rate_limited(login(a, headers), is_global=False)
        assert_rate_limited(login(b, headers), is_global=False)
        assert login(b, limited()).status_code == 400


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="memory storage only")
def test_instances_without_redis_count_alone(database_url):
    settings = make_settings(database_url)
    headers = limited()
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        assert [login(a, headers).status_code for _ in range(11)][-1] == 429
        assert login(b, headers).status_code == 400


def test_requests_rejected_before_the_handler_count_too(client):
    # Malformed bodies never reach the login handler (validation rejects them), yet they spend
    # the same bucket: guessing cannot hide behind a schema error.
    headers = limited()
    for _ in range(10):
        response = client.post("/v1/auth/login", json={"email": "not-an-email"}, headers=headers)
        assert response.status_code == 400
        assert response.headers["x-ratelimit-bucket"] == "auth_login"
    assert_rate_limited(client.post("/v1/auth/login", json=LOGIN, headers=headers), is_global=False)


def test_unauthenticated_and_unrouted_requests_carry_headers_and_count(client):
    headers = limited()
    unauthorized = client.get("/v1/users/@me", headers={**headers, "Authorization": "flx_not-a-token"})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["x-ratelimit-bucket"] == "get_current_user"
    wrong_method = client.delete("/v1/users/@me", headers=headers)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["x-ratelimit-bucket"] == "global"
    unknown = client.get("/v1/no-such-route", headers=headers)
    assert unknown.status_code == 404
    assert unknown.headers["x-ratelimit-bucket"] == "global"
    # Three requests so far on the global budget, this one is the fourth.
    assert int(client.get("/v1/no-such-route", headers=headers).headers["x-ratelimit-remaining"]) == 50 - 4


def test_an_unreachable_counter_store_does_not_fail_requests(database_url, monkeypatch):
    asked = []

    async def unreachable(self, charges):
        asked.append(charges)
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(RedisCounters, "charge", unreachable)
    settings = make_settings(database_url, REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there either
    with TestClient(create_app(settings)) as client:
        responses = [login(client, limited()) for _ in range(3)]
    assert [r.status_code for r in responses] == [400] * 3  # served, just not counted
    assert all("x-ratelimit-remaining" not in r.headers for r in responses)
    assert len(asked) == 1  # after a failure the store is left alone for a second, not asked per request


def test_ipv6_clients_share_a_budget_per_64():
    from service.ratelimit import rate_limit_key

    assert rate_limit_key("2001:db8:1:2::1") == rate_limit_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert rate_limit_key("2001:db8:1:3::1") != rate_limit_key("2001:db8:1:2::1")
    assert rate_limit_key("198.51.100.7") == "198.51.100.7"
    assert rate_limit_key("::ffff:198.51.100.7") == "198.51.100.7"  # an IPv4 client over IPv6 is that client
    assert rate_limit_key("testclient") == "testclient"
