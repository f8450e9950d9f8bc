"""Two real server processes share state through the database and Redis, as production runs."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import pytest

from service.ratelimit import TEST_OPT_IN_HEADER
from tests.conftest import unique_ip
from tests.live import live_server

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")


def post(base: str, path: str, body: dict, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own loopback servers
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_two_processes_share_one_rate_limit_budget_and_one_database(database_url):
    env = {"FLUXER_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": os.environ["REDIS_URL"]}
    headers = {TEST_OPT_IN_HEADER: "true", "X-Forwarded-For": unique_ip()}
    login = {"email": "nobody@example.com", "password": "not the password"}
    with live_server(env) as first, live_server(env) as second:
        statuses = [post(first if n % 2 else second, "/auth/login", login, headers)[0] for n in range(10)]
        assert statuses == [400] * 10  # served (wrong credentials), five by each process
        status, body = post(first, "/auth/login", login, headers)
        assert status == 429 and body["code"] == "RATE_LIMITED"
        assert post(second, "/auth/login", login, headers)[0] == 429

        # An account registered through one process logs in through the other.
        ip = unique_ip()
        account = {"email": f"two-{ip}@example.com", "password": "correct horse battery staple"}
        assert post(first, "/auth/register", account, {"X-Forwarded-For": ip})[0] == 200
        status, body = post(second, "/auth/login", account, {"X-Forwarded-For": ip})
        assert status == 200 and body["token"].startswith("flx_")
