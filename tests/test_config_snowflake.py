"""Settings loading, snowflake ids and the client-address rules."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.config import ALWAYS_ALLOWED_ORIGINS, DEV_SECRET, ConfigError, load_settings
from service.net import client_address, mask
from service.snowflake import (
    FLUXER_EPOCH_MS,
    MAX_NODE,
    SnowflakeGenerator,
    snowflake_from_time,
    snowflake_time,
)

GOOD_SECRET = "s" * 40
DB = "sqlite:///unused.sqlite3"


def prod(**environ):
    return load_settings({"FLUXER_ENV": "production", "DATABASE_URL": DB, **environ})


# --- configuration -------------------------------------------------------------------------------


def test_production_refuses_default_secret():
    with pytest.raises(ConfigError, match="FLUXER_SECRET_KEY"):
        prod()
    with pytest.raises(ConfigError):
        prod(FLUXER_SECRET_KEY=DEV_SECRET)


@pytest.mark.parametrize("secret", ["short", "x" * 31])
def test_production_refuses_short_secret(secret):
    with pytest.raises(ConfigError):
        prod(FLUXER_SECRET_KEY=secret)


def test_production_accepts_strong_secret():
    loaded = prod(FLUXER_SECRET_KEY="x" * 32)
    assert loaded.is_production
    assert loaded.secret_key == "x" * 32
    assert not loaded.test_harness_enabled


def test_production_refuses_in_memory_database():
    with pytest.raises(ConfigError):
        prod(FLUXER_SECRET_KEY=GOOD_SECRET, DATABASE_URL="sqlite:///:memory:")


@pytest.mark.parametrize("ttl", ["0", "-3600", "99999999999"])
def test_media_url_lifetimes_outside_a_minute_to_a_year_are_refused(ttl):
    with pytest.raises(ConfigError, match="MEDIA_URL_TTL_SECONDS"):
        load_settings({"FLUXER_ENV": "test", "MEDIA_URL_TTL_SECONDS": ttl})
    assert load_settings({"FLUXER_ENV": "test", "MEDIA_URL_TTL_SECONDS": "3600"}).media_url_ttl_seconds == 3600


@pytest.mark.parametrize("mode", ["development", "test"])
def test_other_modes_accept_default_secret(mode):
    loaded = load_settings({"FLUXER_ENV": mode, "DATABASE_URL": DB})
    assert loaded.secret_key == DEV_SECRET
    assert loaded.test_harness_enabled


@pytest.mark.parametrize("mode", ["staging", "prod", "dev"])
def test_invalid_env(mode):
    with pytest.raises(ConfigError, match="FLUXER_ENV"):
        load_settings({"FLUXER_ENV": mode, "DATABASE_URL": DB})


def test_env_is_case_insensitive_and_defaults_to_development():
    assert load_settings({"FLUXER_ENV": "TEST", "DATABASE_URL": DB}).env == "test"
    assert load_settings({"DATABASE_URL": DB}).env == "development"


def test_invalid_trusted_proxies():
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings({"FLUXER_ENV": "test", "TRUSTED_PROXIES": "not-a-network"})


def test_weak_argon2_refused():
    with pytest.raises(ConfigError):
        load_settings({"FLUXER_ENV": "test", "ARGON2_MEMORY_KIB": "1024"})


def test_config_file_and_env_precedence(tmp_path):
    path = tmp_path / "fluxer.toml"
    path.write_text(
        'env = "production"\n'
        f'secret_key = "{GOOD_SECRET}"\n'
        'database_url = "postgresql://file/db"\n'
        'public_url = "https://file.example/"\n'
        'cors_origins = ["https://a.example", "https://b.example"]\n'
        "max_body_bytes = 2048\n"
    )
    from_file = load_settings({"FLUXER_CONFIG": str(path)})
    assert from_file.env == "production"
    assert from_file.secret_key == GOOD_SECRET
    assert from_file.database_url == "postgresql://file/db"
    assert from_file.public_url == "https://file.example"
    assert from_file.max_body_bytes == 2048
    assert set(from_file.cors_origins) == {*ALWAYS_ALLOWED_ORIGINS, "https://a.example", "https://b.example"}

    overridden = load_settings({"FLUXER_CONFIG": str(path), "FLUXER_ENV": "test", "MAX_BODY_BYTES": "4096",
                                "DATABASE_URL": DB, "CORS_ORIGINS": "https://c.example"})
    assert overridden.env == "test"
    assert overridden.max_body_bytes == 4096
    assert overridden.database_url == DB
    assert overridden.secret_key == GOOD_SECRET  # not overridden: still from the file
    assert "https://c.example" in overridden.cors_origins
    assert "https://a.example" not in overridden.cors_origins
    # An empty variable does not override the file.
    assert load_settings({"FLUXER_CONFIG": str(path), "MAX_BODY_BYTES": ""}).max_body_bytes == 2048


def test_config_file_checked_like_env(tmp_path):
    path = tmp_path / "weak.toml"
    path.write_text('env = "production"\nsecret_key = "short"\n')
    with pytest.raises(ConfigError):
        load_settings({"FLUXER_CONFIG": str(path)})


@pytest.mark.parametrize("content", [None, "this is = not [toml"])
def test_unreadable_config_file(tmp_path, content):
    path = tmp_path / "broken.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match="config file"):
        load_settings({"FLUXER_CONFIG": str(path)})


def test_always_allowed_origins_are_not_duplicated():
    loaded = load_settings({"FLUXER_ENV": "test", "CORS_ORIGINS": "https://app.fluxer.app,https://x.example"})
    assert loaded.cors_origins.count("https://app.fluxer.app") == 1
    assert "https://x.example" in loaded.cors_origins


# --- snowflakes ---------------------------------------------------------------------------------


def test_ids_strictly_increase():
    generator = SnowflakeGenerator(5)
    ids = [generator.next_id() for _ in range(20_000)]  # several full sequences within one millisecond
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert all(((i >> 12) & MAX_NODE) == 5 for i in ids)


def test_sequence_overflow_borrows_the_next_millisecond():
    generator = SnowflakeGenerator(1, clock=lambda: FLUXER_EPOCH_MS + 1_000)
    ids = [generator.next_id() for _ in range(4096 * 3)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert ids[-1] >> 22 == 1_002


def test_clock_stepping_back():
    now = [FLUXER_EPOCH_MS + 10_000_000]
    generator = SnowflakeGenerator(7, clock=lambda: now[0])
    before = [generator.next_id() for _ in range(10)]
    now[0] -= 60_000  # NTP steps the clock back a minute
    after = [generator.next_id() for _ in range(10)]
    now[0] += 120_000
    later = generator.next_id()
    ids = [*before, *after, later]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert later >> 22 == 10_060_000


@given(steps=st.lists(st.integers(min_value=-5_000, max_value=5_000), min_size=1, max_size=200))
@settings(max_examples=100, deadline=None)
def test_monotonic_under_any_clock(steps):
    now = [FLUXER_EPOCH_MS + 1_000_000_000]

    def clock():
        return now[0]

    generator = SnowflakeGenerator(3, clock=clock)
    previous = -1
    for step in steps:
        now[0] += step
        current = generator.next_id()
        assert current > previous
        previous = current


def test_epoch_encoding():
    moment = datetime(2026, 3, 4, 12, 0, 0, 123000, tzinfo=UTC)
    ms = int(moment.timestamp() * 1000)
    snowflake = SnowflakeGenerator(9, clock=lambda: ms).next_id()
    assert snowflake_time(snowflake) == moment
    assert snowflake >> 22 == ms - FLUXER_EPOCH_MS
    assert snowflake_time(0) == datetime(2015, 1, 1, tzinfo=UTC)
    assert snowflake_from_time(moment) >> 22 == snowflake >> 22
    assert snowflake_from_time(moment) <= snowflake


def test_real_clock_ids_encode_now():
    snowflake = SnowflakeGenerator(0).next_id()
    assert abs(snowflake_time(snowflake) - datetime.now(UTC)) < timedelta(seconds=5)
    assert 0 < snowflake < 2**63


def test_generators_on_different_nodes_never_collide():
    fixed = lambda: FLUXER_EPOCH_MS + 42  # noqa: E731 - the same millisecond for both, the worst case
    a, b = SnowflakeGenerator(1, clock=fixed), SnowflakeGenerator(2, clock=fixed)
    ids_a = {a.next_id() for _ in range(5000)}
    ids_b = {b.next_id() for _ in range(5000)}
    assert len(ids_a) == len(ids_b) == 5000
    assert not ids_a & ids_b


@given(node_a=st.integers(0, MAX_NODE), node_b=st.integers(0, MAX_NODE), count=st.integers(1, 300))
@settings(max_examples=50, deadline=None)
def test_distinct_nodes_property(node_a, node_b, count):
    if node_a == node_b:
        return
    a, b = SnowflakeGenerator(node_a), SnowflakeGenerator(node_b)
    assert not {a.next_id() for _ in range(count)} & {b.next_id() for _ in range(count)}


def test_threads_share_a_generator_safely():
    generator = SnowflakeGenerator(4)
    results: list[list[int]] = [[] for _ in range(8)]

    def work(index):
        results[index].extend(generator.next_id() for _ in range(2000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [i for chunk in results for i in chunk]
    assert len(set(everything)) == len(everything)
    for chunk in results:
        assert chunk == sorted(chunk)


@pytest.mark.parametrize("node", [-1, MAX_NODE + 1])
def test_node_id_bounds(node):
    with pytest.raises(ValueError):
        SnowflakeGenerator(node)


def test_apps_get_distinct_nodes(database_url):
    from service.app import allocate_node_id
    from service.db import Database

    db = Database(database_url)
    try:
        first, second = allocate_node_id(db), allocate_node_id(db)
    finally:
        db.engine.dispose()
    assert first != second
    assert 0 <= first <= MAX_NODE and 0 <= second <= MAX_NODE


# --- client addresses -----------------------------------------------------------------------------


def test_forwarded_for_ignored_from_untrusted_peer():
    production = prod(FLUXER_SECRET_KEY=GOOD_SECRET)
    assert client_address("203.0.113.9", "198.51.100.1", production) == "203.0.113.9"
    assert client_address("203.0.113.9", None, production) == "203.0.113.9"


def test_forwarded_for_honoured_from_trusted_proxy():
    production = prod(FLUXER_SECRET_KEY=GOOD_SECRET, TRUSTED_PROXIES="10.0.0.0/8")
    assert client_address("10.1.2.3", "198.51.100.1, 10.9.9.9", production) == "198.51.100.1"
    # A client cannot pick its key: what it wrote stands left of what the trusted proxy appended.
    assert client_address("10.1.2.3", "192.0.2.77, 198.51.100.1", production) == "198.51.100.1"
    assert client_address("10.1.2.3", "10.5.5.5, 10.9.9.9", production) == "10.5.5.5"  # all proxies
    assert client_address("10.1.2.3", "garbage", production) == "10.1.2.3"
    assert client_address("11.0.0.1", "198.51.100.1", production) == "11.0.0.1"
    assert client_address("not-an-ip", "198.51.100.1", production) == "not-an-ip"
    default = prod(FLUXER_SECRET_KEY=GOOD_SECRET)
    assert client_address("127.0.0.1", "198.51.100.1", default) == "198.51.100.1"
    assert client_address("::1", "2001:db8::1", default) == "2001:db8::1"


def test_forwarded_for_always_trusted_in_test_mode():
    test = load_settings({"FLUXER_ENV": "test", "DATABASE_URL": DB})
    assert client_address("203.0.113.9", "198.51.100.1", test) == "198.51.100.1"
    assert client_address(None, None, test) == "0.0.0.0"  # noqa: S104 - a placeholder, nothing binds


def test_mask():
    assert mask("203.0.113.7") == "203.0.113.x"
    assert mask("2001:db8:1234:5678::1") == "2001:db8:1234::x"
    assert mask("nonsense") is None
    assert mask(None) is None
