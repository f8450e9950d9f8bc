"""Friends, friend requests, blocks and notes (openapi/relationships.yaml)."""

from __future__ import annotations

import time

import pytest

from service import relationships
from service.auth import Identity
from tests.conftest import run_at_once

FRIEND, BLOCKED, INCOMING, OUTGOING = 1, 2, 3, 4
URL = "/v1/users/@me/relationships"


def _put(client, account, other, **body):
    return client.put(f"{URL}/{other.user_id}", json=body or None, headers=account.auth)


def _views(client, account) -> dict[str, int]:
    response = client.get(URL, headers=account.auth)
    assert response.status_code == 200, response.text
    return {r["id"]: r["type"] for r in response.json()}


def _events(published, name: str) -> list[tuple[tuple[int, ...], dict]]:
    return [(e.user_ids, e.data) for e in published if e.name == name]


def _set_system(app, account) -> None:
    from service.models import User

    session = app.runtime.db.session
    try:
        session.get(User, int(account.user_id)).system = True
        session.commit()
    finally:
        app.runtime.db.remove()


def test_request_then_accept(client, register, published):
    alice, bob = register(), register()
    sent = _put(client, alice, bob)
    assert sent.status_code == 200, sent.text
    assert sent.json()["type"] == OUTGOING and sent.json()["id"] == bob.user_id
    assert sent.json()["user"]["id"] == bob.user_id and sent.json()["nickname"] is None
    assert _views(client, alice) == {bob.user_id: OUTGOING}
    assert _views(client, bob) == {alice.user_id: INCOMING}
    added = _events(published, "RELATIONSHIP_ADD")
    assert [(ids, d["type"], d["id"]) for ids, d in added] == [
        ((int(alice.user_id),), OUTGOING, bob.user_id), ((int(bob.user_id),), INCOMING, alice.user_id)]

    again = _put(client, alice, bob)  # still pending: answered as it is, nothing sent
    assert again.status_code == 200 and again.json()["type"] == OUTGOING
    assert len(_events(published, "RELATIONSHIP_ADD")) == 2

    accepted = _put(client, bob, alice, type=FRIEND)
    assert accepted.status_code == 200 and accepted.json()["type"] == FRIEND
    assert _views(client, alice) == {bob.user_id: FRIEND}
    assert _views(client, bob) == {alice.user_id: FRIEND}
    updated = _events(published, "RELATIONSHIP_UPDATE")
    assert sorted((ids, d["type"], d["id"]) for ids, d in updated) == sorted([
        ((int(bob.user_id),), FRIEND, alice.user_id), ((int(alice.user_id),), FRIEND, bob.user_id)])

    # PUT on a friend answers the friendship; POST (by id or tag) says so.
    assert _put(client, alice, bob).json()["type"] == FRIEND
    repeat = client.post(f"{URL}/{bob.user_id}", headers=alice.auth)
    assert repeat.status_code == 400 and repeat.json()["code"] == "ALREADY_FRIENDS"
    me = client.get("/v1/users/@me", headers=bob.auth).json()
    by_tag = client.post(URL, json={"username": me["username"], "discriminator": me["discriminator"]},
                         headers=alice.auth)
    assert by_tag.status_code == 400 and by_tag.json()["code"] == "ALREADY_FRIENDS"
    assert len(_events(published, "RELATIONSHIP_UPDATE")) == 2


def test_crossing_requests_make_friends(client, register, published):
    alice, bob = register(), register()
    assert client.post(f"{URL}/{bob.user_id}", headers=alice.auth).json()["type"] == OUTGOING
    crossed = client.post(f"{URL}/{alice.user_id}", headers=bob.auth)
    assert crossed.status_code == 200 and crossed.json()["type"] == FRIEND
    assert _views(client, alice) == {bob.user_id: FRIEND} and _views(client, bob) == {alice.user_id: FRIEND}


def test_request_by_tag(client, register):
    alice, bob = register(), register()
    me = client.get("/v1/users/@me", headers=bob.auth).json()
    sent = client.post(URL, json={"username": me["username"].upper(), "discriminator": int(me["discriminator"])},
                       headers=alice.auth)
    assert sent.status_code == 200 and sent.json()["user"]["id"] == bob.user_id and sent.json()["type"] == OUTGOING
    nobody = client.post(URL, json={"username": "nobody_here_at_all", "discriminator": "0001"}, headers=alice.auth)
    assert nobody.status_code == 400 and nobody.json()["code"] == "NO_USERS_WITH_FLUXERTAG_EXIST"
    bad = client.post(URL, json={"username": "x", "discriminator": 99999}, headers=alice.auth)
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_FORM_BODY"


@pytest.mark.parametrize("remover", ["sender", "receiver"])
def test_cancel_or_decline_removes_both_sides(client, register, published, remover):
    alice, bob = register(), register()
    _put(client, alice, bob)
    who, other = (alice, bob) if remover == "sender" else (bob, alice)
    assert client.delete(f"{URL}/{other.user_id}", headers=who.auth).status_code == 204
    assert _views(client, alice) == {} and _views(client, bob) == {}
    removed = _events(published, "RELATIONSHIP_REMOVE")
    assert sorted(removed) == sorted([((int(alice.user_id),), {"id": bob.user_id}),
                                      ((int(bob.user_id),), {"id": alice.user_id})])
    gone = client.delete(f"{URL}/{other.user_id}", headers=who.auth)
    assert gone.status_code == 404 and gone.json()["code"] == "UNKNOWN_USER"


def test_unfriend(client, register):
    alice, bob = register(), register()
    _put(client, alice, bob)
    _put(client, bob, alice)
    assert client.delete(f"{URL}/{alice.user_id}", headers=bob.auth).status_code == 204
    assert _views(client, alice) == {} and _views(client, bob) == {}


def test_block_removes_the_friendship_on_both_sides(client, register, published):
    alice, bob = register(), register()
    _put(client, alice, bob)
    _put(client, bob, alice)
    published.clear()
    blocked = _put(client, alice, bob, type=BLOCKED)
    assert blocked.status_code == 200 and blocked.json()["type"] == BLOCKED
    assert _views(client, alice) == {bob.user_id: BLOCKED}
    assert _views(client, bob) == {}  # bob is not told he is blocked, only that the friendship is gone
    assert _events(published, "RELATIONSHIP_REMOVE") == [((int(bob.user_id),), {"id": alice.user_id})]
    assert [(ids, d["type"]) for ids, d in _events(published, "RELATIONSHIP_ADD")] == [((int(alice.user_id),), BLOCKED)]

    again = _put(client, alice, bob, type=BLOCKED)  # idempotent
    assert again.status_code == 200 and again.json()["type"] == BLOCKED and len(published) == 2

    theirs = _put(client, bob, alice)
    assert theirs.status_code == 400 and theirs.json()["code"] == "FRIEND_REQUEST_BLOCKED"
    mine = client.post(f"{URL}/{bob.user_id}", headers=alice.auth)
    assert mine.status_code == 400 and mine.json()["code"] == "CANNOT_SEND_FRIEND_REQUEST_TO_BLOCKED_USER"
    assert _views(client, alice) == {bob.user_id: BLOCKED} and _views(client, bob) == {}


def test_block_with_pending_request_and_mutual_blocks(client, register):
    alice, bob = register(), register()
    _put(client, alice, bob)  # alice asked bob; bob blocks her instead
    assert _put(client, bob, alice, type=BLOCKED).json()["type"] == BLOCKED
    assert _views(client, alice) == {} and _views(client, bob) == {alice.user_id: BLOCKED}

    assert _put(client, alice, bob, type=BLOCKED).status_code == 200  # both block: both rows stay
    assert _views(client, alice) == {bob.user_id: BLOCKED} and _views(client, bob) == {alice.user_id: BLOCKED}
    assert client.delete(f"{URL}/{bob.user_id}", headers=alice.auth).status_code == 204  # unblock: only hers
    assert _views(client, alice) == {} and _views(client, bob) == {alice.user_id: BLOCKED}
    assert client.delete(f"{URL}/{alice.user_id}", headers=bob.auth).status_code == 204
    assert _put(client, bob, alice).json()["type"] == OUTGOING  # unblocked: requests work again


def test_request_errors(client, register, app):
    alice, system = register(), register()
    myself = _put(client, alice, alice)
    assert myself.status_code == 400 and myself.json()["code"] == "CANNOT_SEND_FRIEND_REQUEST_TO_SELF"
    unknown = client.put(f"{URL}/123456789", headers=alice.auth)
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_USER"
    wrong_type = _put(client, alice, system, type=INCOMING)
    assert wrong_type.status_code == 400
    _set_system(app, system)
    to_system = _put(client, alice, system)
    assert to_system.status_code == 400 and to_system.json()["code"] == "FRIEND_REQUEST_BLOCKED"
    block_system = _put(client, alice, system, type=BLOCKED)
    assert block_system.status_code == 400 and block_system.json()["code"] == "CANNOT_BLOCK_SYSTEM_USER"
    assert _views(client, alice) == {}
    no_one = client.patch(f"{URL}/{system.user_id}", json={"nickname": "x"}, headers=alice.auth)
    assert no_one.status_code == 404 and no_one.json()["code"] == "UNKNOWN_USER"
    assert client.get(URL).status_code == 401


def test_max_friends(client, register, monkeypatch):
    monkeypatch.setattr(relationships, "MAX_FRIENDS", 1)
    alice, bob, carol = register(), register(), register()
    _put(client, alice, bob)
    _put(client, bob, alice)
    full = _put(client, alice, carol)
    assert full.status_code == 400 and full.json()["code"] == "MAX_FRIENDS" and full.json()["max"] == 1
    _put(client, carol, alice)  # carol may ask; alice cannot accept while full, nor carol once she is
    refused = _put(client, alice, carol)
    assert refused.status_code == 400 and refused.json()["code"] == "MAX_FRIENDS"
    assert _views(client, alice) == {bob.user_id: FRIEND, carol.user_id: INCOMING}


def test_nickname(client, register, published):
    alice, bob = register(), register()
    _put(client, alice, bob)
    published.clear()
    named = client.patch(f"{URL}/{bob.user_id}", json={"nickname": "Bobby"}, headers=alice.auth)
    assert named.status_code == 200 and named.json()["nickname"] == "Bobby"
    assert [(ids, d["nickname"]) for ids, d in _events(published, "RELATIONSHIP_UPDATE")] == [
        ((int(alice.user_id),), "Bobby")]
    assert client.get(URL, headers=alice.auth).json()[0]["nickname"] == "Bobby"
    assert client.get(URL, headers=bob.auth).json()[0]["nickname"] is None  # private to alice
    cleared = client.patch(f"{URL}/{bob.user_id}", json={"nickname": None}, headers=alice.auth)
    assert cleared.status_code == 200 and cleared.json()["nickname"] is None
    long = client.patch(f"{URL}/{bob.user_id}", json={"nickname": "x" * 33}, headers=alice.auth)
    assert long.status_code == 400


def test_notes(client, register, published):
    alice, bob = register(), register()
    url = f"/v1/users/@me/notes/{bob.user_id}"
    missing = client.get(url, headers=alice.auth)
    assert missing.status_code == 404 and missing.json()["code"] == "UNKNOWN_USER"
    assert client.put(url, json={"note": "met at the conference"}, headers=alice.auth).status_code == 204
    assert client.get(url, headers=alice.auth).json() == {"note": "met at the conference"}
    assert client.get("/v1/users/@me/notes", headers=alice.auth).json() == {bob.user_id: "met at the conference"}
    assert client.get("/v1/users/@me/notes", headers=bob.auth).json() == {}  # private
    assert client.put(url, json={"note": "met at the conference"}, headers=alice.auth).status_code == 204  # no change
    assert client.put(url, json={"note": ""}, headers=alice.auth).status_code == 204
    assert client.get(url, headers=alice.auth).status_code == 404
    assert client.put(url, json={"note": "again"}, headers=alice.auth).status_code == 204
    assert client.put(url, json={"note": None}, headers=alice.auth).status_code == 204
    assert client.get("/v1/users/@me/notes", headers=alice.auth).json() == {}
    notes = _events(published, "USER_NOTE_UPDATE")
    assert notes == [((int(alice.user_id),), {"id": bob.user_id, "note": "met at the conference"}),
                     ((int(alice.user_id),), {"id": bob.user_id, "note": ""}),
                     ((int(alice.user_id),), {"id": bob.user_id, "note": "again"}),
                     ((int(alice.user_id),), {"id": bob.user_id, "note": ""})]
    too_long = client.put(url, json={"note": "x" * 257}, headers=alice.auth)
    assert too_long.status_code == 400
    unknown = client.put("/v1/users/@me/notes/123456789", json={"note": "who"}, headers=alice.auth)
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_USER"


def test_crossing_requests_at_the_same_moment(app, register, monkeypatch):
    """Both ask at once: each waits for the other's lock, so the pair ends as friends, never half-written."""
    alice, bob = register(), register()
    rt = app.runtime
    counted = relationships._friend_count

    def slow_count(session, user_id):  # both requests have read the pair's rows; now they write
        time.sleep(0.3)
        return counted(session, user_id)

    monkeypatch.setattr(relationships, "_friend_count", slow_count)
    def ask(me, other):
        return lambda session: relationships.send_request(session, Identity(int(me.user_id), "session"), other.user_id)

    results, errors = run_at_once(app, ask(alice, bob), ask(bob, alice))
    assert errors == []
    assert sorted(r["type"] for r in results) == [FRIEND, OUTGOING]
    session = rt.db.session
    try:
        from service.models import Relationship

        rows = {(r.user_id, r.target_id): r.type for r in session.query(Relationship)}
    finally:
        rt.db.remove()
    assert rows == {(int(alice.user_id), int(bob.user_id)): FRIEND, (int(bob.user_id), int(alice.user_id)): FRIEND}
