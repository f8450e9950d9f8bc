"""The message test harness (openapi/test_harness.yaml): seed a channel's history in bulk, or empty it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from service.app import create_app
from service.harness_messages import MAX_SEED
from service.snowflake import TIMESTAMP_SHIFT, snowflake_from_time, snowflake_time
from tests.conftest import make_settings
from tests.test_http import PROD_SECRET, assert_error

SEED = "/v1/test/messages/seed"
TEN_DAYS_MS = 864_000_000


def _bucket(message_id: int) -> int:
    return (message_id >> TIMESTAMP_SHIFT) // TEN_DAYS_MS


def _history(client, account, channel_id, **params):
    response = client.get(f"/v1/channels/{channel_id}/messages", params=params, headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _last_message_id(client, account, channel_id):
    return client.get(f"/v1/channels/{channel_id}", headers=account.auth).json()["last_message_id"]


def test_seeded_history_reads_back_newest_first_across_buckets(client, register, make_guild):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Given out of order, a day apart: 35 days spans four 10-day buckets.
    days = [3, 0, 34, 12, 25, 7, 20, 30]
    body = {"channel_id": channel, "author_id": owner.user_id,
            "messages": [{"timestamp": (start + timedelta(days=d)).isoformat(), "content": f"day {d}"} for d in days]}
    response = client.post(SEED, json=body)
    assert response.status_code == 200, response.text
    seeded = response.json()

    assert [m["message_id"] for m in seeded["messages"]] == [
        str(snowflake_from_time(start + timedelta(days=d)) | index) for index, d in enumerate(days)]
    for item in seeded["messages"]:
        assert item["bucket"] == _bucket(int(item["message_id"]))
        assert datetime.fromisoformat(item["timestamp"]) == snowflake_time(int(item["message_id"]))
    assert seeded["buckets_populated"] == sorted({m["bucket"] for m in seeded["messages"]}, reverse=True)
    assert len(seeded["buckets_populated"]) >= 4
    assert seeded["channel_state_updated"] is True

    newest_first = sorted(days, reverse=True)
    page = _history(client, owner, channel)
    assert [m["content"] for m in page] == [f"day {d}" for d in newest_first]
    assert all(m["author"]["id"] == owner.user_id and m["channel_id"] == channel for m in page)
    assert [m["timestamp"] for m in page] == sorted((m["timestamp"] for m in page), reverse=True)

    # Pages walk backwards through the buckets with `before`, and forwards with `after`.
    first = _history(client, owner, channel, limit=3)
    second = _history(client, owner, channel, limit=3, before=first[-1]["id"])
    assert [m["content"] for m in first + second] == [f"day {d}" for d in newest_first[:6]]
    oldest = _history(client, owner, channel, limit=2, after=page[-1]["id"])
    assert [m["content"] for m in oldest] == [f"day {d}" for d in newest_first[-3:-1]]
    assert _last_message_id(client, owner, channel) == page[0]["id"]


def test_explicit_ids_authors_and_default_timestamp(client, register, make_guild, add_member):
    owner, other = register(), register()
    guild = make_guild(owner)
    add_member(other, guild)
    channel = guild["system_channel_id"]
    explicit = snowflake_from_time(datetime(2025, 6, 1, tzinfo=UTC)) | 77
    before = datetime.now(UTC)
    response = client.post(SEED, json={
        "channel_id": int(channel), "author_id": owner.user_id,
        "messages": [{"message_id": str(explicit), "content": "explicit", "author_id": other.user_id},
                     {"content": "now"},
                     {"message_id": explicit + 1, "timestamp": "2030-01-01T00:00:00Z"}],
    })
    assert response.status_code == 200, response.text
    ids = [int(m["message_id"]) for m in response.json()["messages"]]
    assert ids[0] == explicit and ids[2] == explicit + 1  # an explicit id wins over a timestamp
    assert ids[1] & 0xFFF == 1
    assert before - timedelta(seconds=1) <= snowflake_time(ids[1]) <= datetime.now(UTC) + timedelta(seconds=1)

    page = _history(client, owner, channel)
    by_id = {m["id"]: m for m in page}
    assert by_id[str(explicit)]["author"]["id"] == other.user_id
    assert by_id[str(ids[1])]["author"]["id"] == owner.user_id
    assert by_id[str(explicit + 1)]["content"] == "message 2"
    assert [m["id"] for m in page][:1] == [str(ids[1])]


def test_channel_state_and_clear_existing(client, register, make_guild):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    new = client.post(SEED, json={"channel_id": channel, "author_id": owner.user_id,
                                  "messages": [{"timestamp": "2026-03-01T00:00:00Z", "content": "new"}]}).json()
    assert new["channel_state_updated"] is True
    last = new["messages"][0]["message_id"]

    older = client.post(SEED, json={"channel_id": channel, "author_id": owner.user_id,
                                    "messages": [{"timestamp": "2026-02-01T00:00:00Z", "content": "older"}]}).json()
    assert older["channel_state_updated"] is False  # the newest message is still the newest
    assert _last_message_id(client, owner, channel) == last
    assert [m["content"] for m in _history(client, owner, channel)] == ["new", "older"]

    replaced = client.post(SEED, json={"channel_id": channel, "author_id": owner.user_id, "clear_existing": True,
                                       "messages": [{"timestamp": "2025-01-01T00:00:00Z", "content": "only"}]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["channel_state_updated"] is True
    assert [m["content"] for m in _history(client, owner, channel)] == ["only"]
    assert _last_message_id(client, owner, channel) == replaced.json()["messages"][0]["message_id"]

    # Seeding nothing with clear_existing empties the channel.
    emptied = client.post(SEED, json={"channel_id": channel, "clear_existing": True, "messages": []})
    assert emptied.json() == {"messages": [], "buckets_populated": [], "channel_state_updated": True}
    assert _history(client, owner, channel) == []


def test_seeded_messages_behave_like_sent_ones(client, register, make_guild):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    seeded = client.post(SEED, json={"channel_id": channel, "author_id": owner.user_id,
                                     "messages": [{"content": "old one"}]}).json()
    message_id = seeded["messages"][0]["message_id"]
    sent = client.post(f"/v1/channels/{channel}/messages", json={"content": "fresh"}, headers=owner.auth)
    assert sent.status_code == 200, sent.text
    assert [m["content"] for m in _history(client, owner, channel)] == ["fresh", "old one"]
    edited = client.patch(f"/v1/channels/{channel}/messages/{message_id}", json={"content": "edited"},
                          headers=owner.auth)
    assert edited.status_code == 200 and edited.json()["content"] == "edited"
    assert client.delete(f"/v1/channels/{channel}/messages/{message_id}", headers=owner.auth).status_code == 204


def test_delete_clears_the_channel(client, register, make_guild):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    client.post(SEED, json={"channel_id": channel, "author_id": owner.user_id, "messages": [{}, {}, {}]})
    assert len(_history(client, owner, channel)) == 3
    response = client.delete(f"/v1/test/channels/{channel}/messages")
    assert response.status_code == 200, response.text
    assert response.json() == {"channel_id": channel, "cleared": True}
    assert _history(client, owner, channel) == []
    assert _last_message_id(client, owner, channel) is None
    assert_error(client.delete("/v1/test/channels/1234/messages"), 404, "UNKNOWN_CHANNEL")


def test_unknown_channel_and_authors(client, register, make_guild):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    assert_error(client.post(SEED, json={"channel_id": "1234", "author_id": owner.user_id, "messages": [{}]}),
                 404, "UNKNOWN_CHANNEL")

    body = assert_error(client.post(SEED, json={"channel_id": channel, "author_id": "999", "messages": [{}]}),
                        400, "INVALID_FORM_BODY")
    assert [e["path"] for e in body["errors"]] == ["author_id"]

    body = assert_error(client.post(SEED, json={"channel_id": channel, "author_id": owner.user_id,
                                                "messages": [{}, {"author_id": "998"}]}), 400, "INVALID_FORM_BODY")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [("messages.1.author_id", "UNKNOWN_USER")]

    body = assert_error(client.post(SEED, json={"channel_id": channel, "messages": [{"author_id": owner.user_id}, {}]}),
                        400, "INVALID_FORM_BODY")
    assert [e["path"] for e in body["errors"]] == ["messages.1.author_id"]
    assert _history(client, owner, channel) == []  # nothing of a refused batch is kept


def test_ids_must_be_new_and_in_range(client, register, make_guild):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    base = {"channel_id": channel, "author_id": owner.user_id}
    body = assert_error(client.post(SEED, json={**base, "messages": [{"message_id": "500"}, {"message_id": 500}]}),
                        400, "INVALID_FORM_BODY")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [("messages.1.message_id", "DUPLICATE_MESSAGE_ID")]

    assert client.post(SEED, json={**base, "messages": [{"message_id": "500"}]}).status_code == 200
    body = assert_error(client.post(SEED, json={**base, "messages": [{"message_id": "501"}, {"message_id": "500"}]}),
                        400, "INVALID_FORM_BODY")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [("messages.1.message_id", "MESSAGE_ALREADY_EXISTS")]
    # ... unless the channel is cleared first.
    assert client.post(SEED, json={**base, "clear_existing": True, "messages": [{"message_id": "500"}]}).status_code == 200

    body = assert_error(client.post(SEED, json={**base, "messages": [{"timestamp": "2014-12-31T23:59:59Z"}]}),
                        400, "INVALID_FORM_BODY")
    assert body["errors"][0]["path"] == "messages.0.timestamp"
    body = assert_error(client.post(SEED, json={**base, "messages": [{"message_id": "9999999999999999999"}]}),
                        400, "INVALID_FORM_BODY")
    assert body["errors"][0]["path"] == "messages.0.message_id"
    assert_error(client.post(SEED, json={**base, "messages": [{"timestamp": "yesterday"}]}), 400, "INVALID_FORM_BODY")


def test_batch_is_bounded(client, register, make_guild):
    owner = register()
    channel = make_guild(owner)["system_channel_id"]
    base = {"channel_id": channel, "author_id": owner.user_id}
    body = assert_error(client.post(SEED, json={**base, "messages": [{}] * (MAX_SEED + 1)}), 400, "INVALID_FORM_BODY")
    assert body["errors"][0]["path"] == "messages"
    # The largest batch goes in at once; with ids from timestamps a millisecond apart, all distinct.
    start = datetime(2026, 5, 1, tzinfo=UTC)
    items = [{"timestamp": (start + timedelta(milliseconds=n)).isoformat()} for n in range(MAX_SEED)]
    response = client.post(SEED, json={**base, "messages": items})
    assert response.status_code == 200, response.text
    assert len(response.json()["messages"]) == MAX_SEED
    page = _history(client, owner, channel, limit=100)
    assert [m["content"] for m in page[:2]] == [f"message {MAX_SEED - 1}", f"message {MAX_SEED - 2}"]


def test_guarded_like_the_other_harness_routes(database_url):
    app = create_app(make_settings(database_url, FLUXER_TEST_TOKEN="harness-secret"))
    with TestClient(app) as client:
        assert_error(client.post(SEED, json={"channel_id": "1", "messages": []}), 403, "TEST_HARNESS_FORBIDDEN")
        assert_error(client.delete("/v1/test/channels/1/messages", headers={"X-Test-Token": "wrong"}), 403,
                     "TEST_HARNESS_FORBIDDEN")
        allowed = client.post(SEED, json={"channel_id": "1", "messages": []}, headers={"X-Test-Token": "harness-secret"})
        assert_error(allowed, 404, "UNKNOWN_CHANNEL")
    production = create_app(make_settings(database_url, FLUXER_ENV="production", FLUXER_SECRET_KEY=PROD_SECRET))
    with TestClient(production) as client:
        assert_error(client.post(SEED, json={"channel_id": "1", "messages": []}), 404, "NOT_FOUND")
        assert_error(client.delete("/v1/test/channels/1/messages"), 404, "NOT_FOUND")
