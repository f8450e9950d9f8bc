"""Every message, reaction, pin, read-state, typing, DM and relationship operation, tried as
tests/test_authorization.py tries the guild ones: a stranger gets 404 and learns nothing (not a
word of any message), a member without the permission gets 403, a member holding exactly that
permission through a role succeeds, and a refused call changes nothing and publishes nothing. In
DMs and group DMs a third party gets 404 on everything while the recipients succeed, except where
MANAGE_MESSAGES is needed (nobody holds it there). Relationships and notes are all @me: nobody
reaches anyone else's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import yaml
from sqlalchemy import select

from service.access import PRIVATE_CHANNEL_PERMISSIONS
from service.models import AuditLogEntry, Channel, ChannelRecipient, Message, Reaction, ReadState
from service.permissions import Permission as P

ERROR_KEYS = {"code", "message", "error", "errors", "permissions"}
SPEC_FILES = ("messages", "reactions", "pins", "read_states", "dms", "relationships")
THUMBS, PARTY = quote("\U0001f44d"), quote("\U0001f389")  # 👍 is on the message already, 🎉 is not
REACTIONS = "/channels/{channel}/messages/{message}/reactions"


@dataclass
class Case:
    operation: str
    method: str
    path: str  # placeholders: channel, message (reacted to with 👍 by its author), pinned, author
    permission: P  # what the caller needs beyond seeing the channel
    body: dict | None = None
    success: int = 200
    silent: bool = False  # refusals answer like success and change nothing (the bulk ack skips)


CASES = [
    Case("list_messages", "GET", "/channels/{channel}/messages", P.READ_MESSAGE_HISTORY),
    Case("send_message", "POST", "/channels/{channel}/messages", P.SEND_MESSAGES, {"content": "hello"}),
    Case("get_message", "GET", "/channels/{channel}/messages/{message}", P.READ_MESSAGE_HISTORY),
    # Only the author edits the text; others may only hide embeds, with MANAGE_MESSAGES.
    Case("edit_message", "PATCH", "/channels/{channel}/messages/{message}", P.MANAGE_MESSAGES, {"flags": 4}),
    Case("delete_message", "DELETE", "/channels/{channel}/messages/{message}", P.MANAGE_MESSAGES, success=204),
    Case("bulk_delete_messages", "POST", "/channels/{channel}/messages/bulk-delete", P.MANAGE_MESSAGES,
         {"messages": ["{message}", "{pinned}"]}, 204),
    Case("indicate_typing", "POST", "/channels/{channel}/typing", P.SEND_MESSAGES, success=204),
    Case("get_channel_slowmode_state", "GET", "/channels/{channel}/slowmode", P.VIEW_CHANNEL),
    Case("add_reaction", "PUT", REACTIONS + f"/{PARTY}/@me", P.ADD_REACTIONS, success=204),
    # Joining a reaction someone already made needs no more than reading the message.
    Case("add_reaction", "PUT", REACTIONS + f"/{THUMBS}/@me", P.READ_MESSAGE_HISTORY, success=204),
    Case("remove_own_reaction", "DELETE", REACTIONS + f"/{THUMBS}/@me", P.READ_MESSAGE_HISTORY, success=204),
    Case("remove_reaction", "DELETE", REACTIONS + f"/{THUMBS}/{{author}}", P.MANAGE_MESSAGES, success=204),
    Case("list_reaction_users", "GET", REACTIONS + f"/{THUMBS}", P.READ_MESSAGE_HISTORY),
    Case("list_reaction_users_v2", "GET", REACTIONS + f"/{THUMBS}/users", P.READ_MESSAGE_HISTORY),
    Case("remove_all_reactions_for_emoji", "DELETE", REACTIONS + f"/{THUMBS}", P.MANAGE_MESSAGES, success=204),
    Case("remove_all_reactions", "DELETE", REACTIONS, P.MANAGE_MESSAGES, success=204),
    Case("list_pinned_messages", "GET", "/channels/{channel}/messages/pins", P.READ_MESSAGE_HISTORY),
    Case("acknowledge_pins", "POST", "/channels/{channel}/pins/ack", P.VIEW_CHANNEL, success=204),
    Case("pin_message", "PUT", "/channels/{channel}/pins/{message}", P.PIN_MESSAGES, success=204),
    Case("unpin_message", "DELETE", "/channels/{channel}/pins/{pinned}", P.PIN_MESSAGES, success=204),
    Case("acknowledge_message", "POST", "/channels/{channel}/messages/{message}/ack", P.VIEW_CHANNEL, {}, 204),
    Case("clear_channel_read_state", "DELETE", "/channels/{channel}/messages/ack", P.VIEW_CHANNEL, success=204),
    Case("ack_bulk_messages", "POST", "/read-states/ack-bulk", P.VIEW_CHANNEL,
         {"read_states": [{"channel_id": "{channel}", "message_id": "{message}"}]}, 204, silent=True),
]
DM_OPERATIONS = {"list_private_channels", "create_private_channel", "add_group_dm_recipient",
                 "remove_group_dm_recipient"}
RELATIONSHIP_OPERATIONS = {"list_user_relationships", "send_friend_request_by_tag", "send_friend_request",
                           "accept_or_update_friend_request", "update_relationship_nickname", "remove_relationship",
                           "list_current_user_notes", "get_note_on_user", "set_note_on_user"}


def _fill(value, ids: dict):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


def _snapshot(app, channel_id: str) -> tuple:
    """Everything about the channel a refused call could have changed, read from the database."""
    cid = int(channel_id)
    session = app.runtime.db.session
    try:
        return (
            session.execute(select(Message.id, Message.content, Message.flags, Message.pinned_at, Message.edited_at)
                            .where(Message.channel_id == cid).order_by(Message.id)).all(),
            session.execute(select(Reaction.message_id, Reaction.emoji_key, Reaction.user_id)
                            .join(Message, Message.id == Reaction.message_id).where(Message.channel_id == cid)
                            .order_by(Reaction.message_id, Reaction.emoji_key, Reaction.user_id)).all(),
            session.execute(select(ReadState.user_id, ReadState.last_message_id, ReadState.mention_count,
                                   ReadState.last_pin_ack_at).where(ReadState.channel_id == cid)
                            .order_by(ReadState.user_id)).all(),
            session.scalars(select(ChannelRecipient.user_id).where(ChannelRecipient.channel_id == cid)
                            .order_by(ChannelRecipient.user_id)).all(),
            session.scalar(select(Channel.last_message_id).where(Channel.id == cid)),
            session.scalars(select(AuditLogEntry.id).order_by(AuditLogEntry.id)).all(),
        )
    finally:
        app.runtime.db.remove()


class Checker:
    """Calls a case and collects every way it misbehaves, so one run reports them all."""

    def __init__(self, client, app, published):
        self.client, self.app, self.published = client, app, published
        self.failures: list[str] = []

    def call(self, account, case: Case, ids: dict):
        body = _fill(case.body, ids)
        return self.client.request(case.method, "/v1" + _fill(case.path, ids), headers=account.auth,
                                   **({"json": body} if body is not None else {}))

    def refused(self, label: str, account, case: Case, ids: dict, status: int, secret: str) -> None:
        """``account`` is turned away with ``status``, learns nothing, and nothing changes."""
        before, events = _snapshot(self.app, ids["channel"]), len(self.published)
        response = self.call(account, case, ids)
        name = f"{case.method} {case.path}: {label}"
        expected = case.success if case.silent else status
        if response.status_code != expected:
            self.failures.append(f"{name} got {response.status_code} {response.text[:160]}")
        elif not case.silent:
            error = response.json()
            if set(error) - ERROR_KEYS or (status == 404 and not error["code"].startswith("UNKNOWN_")):
                self.failures.append(f"{name}: the refusal carries data: {response.text[:160]}")
        if secret in response.text:
            self.failures.append(f"{name}: message content leaked")
        if _snapshot(self.app, ids["channel"]) != before or len(self.published) != events:
            self.failures.append(f"{name}: a refused call changed something or published an event")

    def allowed(self, label: str, account, case: Case, ids: dict) -> None:
        before = _snapshot(self.app, ids["channel"])
        response = self.call(account, case, ids)
        if response.status_code != case.success:
            self.failures.append(f"{case.method} {case.path}: {label} got {response.status_code} {response.text[:160]}")
        elif case.silent and _snapshot(self.app, ids["channel"]) == before:
            self.failures.append(f"{case.method} {case.path}: {label}'s call changed nothing")


def _post_messages(client, author, channel: str, secret: str) -> dict:
    """Two messages by ``author``: one with their 👍 on it, one pinned."""
    sent = [_ok(client.post(f"/v1/channels/{channel}/messages", json={"content": f"{secret} {n}"}, headers=author.auth))
            for n in range(2)]
    _ok(client.put(f"/v1/channels/{channel}/messages/{sent[0]['id']}/reactions/{THUMBS}/@me", headers=author.auth),
        204)
    _ok(client.put(f"/v1/channels/{channel}/pins/{sent[1]['id']}", headers=author.auth), 204)
    return {"channel": channel, "message": sent[0]["id"], "pinned": sent[1]["id"], "author": author.user_id}


def _guild_channel(client, add_member, owner, plain, granted, permission: P) -> str:
    """A fresh guild whose @everyone may see and read the channel, minus ``permission``; ``plain`` holds
    only that, ``granted`` also a role with exactly ``permission``."""
    guild = _ok(client.post("/v1/guilds", json={"name": "Messaging"}, headers=owner.auth))
    gid = guild["id"]
    everyone = int(P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY) & ~int(permission)
    _ok(client.patch(f"/v1/guilds/{gid}/roles/{gid}", json={"permissions": str(everyone)}, headers=owner.auth))
    role = _ok(client.post(f"/v1/guilds/{gid}/roles", json={"name": "Granted", "permissions": str(int(permission))},
                           headers=owner.auth))
    add_member(plain, guild)
    add_member(granted, guild)
    _ok(client.put(f"/v1/guilds/{gid}/members/{granted.user_id}/roles/{role['id']}", headers=owner.auth), 204)
    return guild["system_channel_id"]


def test_the_operation_tables_cover_every_operation():
    spec = Path(__file__).resolve().parent.parent / "openapi"
    declared = set()
    for stem in SPEC_FILES:
        for item in yaml.safe_load((spec / f"{stem}.yaml").read_text())["paths"].values():
            declared |= {op["operationId"] for op in item.values() if isinstance(op, dict) and "operationId" in op}
    assert {c.operation for c in CASES} | DM_OPERATIONS | RELATIONSHIP_OPERATIONS == declared


def test_guild_messaging_checks_membership_and_permission(client, app, register, add_member, published):
    owner, plain, granted, stranger = (register() for _ in range(4))
    checker = Checker(client, app, published)
    channels: dict[P, str] = {}  # one guild per permission; fresh messages per case
    for case in CASES:
        if case.permission not in channels:
            channels[case.permission] = _guild_channel(client, add_member, owner, plain, granted, case.permission)
        secret = f"SECRET-{uuid.uuid4().hex}"
        ids = _post_messages(client, owner, channels[case.permission], secret)
        checker.refused("stranger", stranger, case, ids, 404, secret)
        checker.refused("member without the permission", plain, case, ids, 403, secret)
        checker.allowed("member with the permission", granted, case, ids)
    assert not checker.failures, "\n".join(checker.failures)


def _befriend(client, a, b) -> None:
    _ok(client.put(f"/v1/users/@me/relationships/{b.user_id}", headers=a.auth))
    _ok(client.put(f"/v1/users/@me/relationships/{a.user_id}", headers=b.auth))


def test_private_channels_answer_only_their_recipients(client, app, register, published):
    alice, bob, carol, dave = (register() for _ in range(4))
    _befriend(client, alice, bob)
    _befriend(client, alice, dave)
    dm = _ok(client.post("/v1/users/@me/channels", json={"recipient_id": bob.user_id}, headers=alice.auth))["id"]
    group = _ok(client.post("/v1/users/@me/channels", json={"recipients": [bob.user_id]}, headers=alice.auth))["id"]
    checker = Checker(client, app, published)
    for case in CASES:
        secret = f"SECRET-{uuid.uuid4().hex}"
        ids = _post_messages(client, alice, dm, secret)
        checker.refused("third party", carol, case, ids, 404, secret)
        if case.permission & PRIVATE_CHANNEL_PERMISSIONS:
            checker.allowed("recipient", bob, case, ids)
        else:  # MANAGE_MESSAGES: nobody moderates a DM
            checker.refused("recipient", bob, case, ids, 403, secret)
    secret = f"SECRET-{uuid.uuid4().hex}"
    ids = _post_messages(client, alice, group, secret)  # refusals change nothing, so one set serves every case
    for case in CASES:
        checker.refused("third party in a group DM", carol, case, ids, 404, secret)
    recipient = "/channels/{channel}/recipients/{user}"
    for channel in (dm, group):
        for method in ("PUT", "DELETE"):
            case = Case(f"{method} recipient", method, recipient, P.VIEW_CHANNEL)
            checker.refused("third party", carol, case, {"channel": channel, "user": dave.user_id}, 404, "SECRET")
    checker.allowed("owner", alice, Case("add", "PUT", recipient, P.VIEW_CHANNEL, success=204),
                    {"channel": group, "user": dave.user_id})
    checker.allowed("owner", alice, Case("remove", "DELETE", recipient, P.VIEW_CHANNEL, success=204),
                    {"channel": group, "user": dave.user_id})
    assert not checker.failures, "\n".join(checker.failures)

    # Carol's own list and her own DM with Alice show nothing of Alice's other conversations.
    assert _ok(client.get("/v1/users/@me/channels", headers=carol.auth)) == []
    assert {c["id"] for c in _ok(client.get("/v1/users/@me/channels", headers=alice.auth))} == {dm, group}
    own = _ok(client.post("/v1/users/@me/channels", json={"recipient_id": alice.user_id}, headers=carol.auth))
    assert own["id"] not in (dm, group) and own["last_message_id"] is None
    assert _ok(client.get(f"/v1/channels/{own['id']}/messages", headers=carol.auth)) == []


def test_relationships_and_notes_are_the_callers_own(client, register):
    alice, bob, carol = register(), register(), register()
    _befriend(client, alice, bob)
    secret = f"SECRET-{uuid.uuid4().hex[:8]}"
    _ok(client.patch(f"/v1/users/@me/relationships/{bob.user_id}", json={"nickname": secret}, headers=alice.auth))
    _ok(client.put(f"/v1/users/@me/notes/{bob.user_id}", json={"note": secret}, headers=alice.auth), 204)

    def state() -> list:
        return [_ok(client.get(path, headers=who.auth)) for who in (alice, bob)
                for path in ("/v1/users/@me/relationships", "/v1/users/@me/notes")]

    before = state()
    assert secret not in str(before[2:]), "Bob sees Alice's nickname or note for him"
    bob_tag = _ok(client.get("/v1/users/@me", headers=bob.auth))
    base = "/v1/users/@me/relationships"
    calls = [  # everything Carol can do names Bob, and touches only Carol's side
        ("GET", base, None, 200),
        ("PATCH", f"{base}/{bob.user_id}", {"nickname": "mine"}, 404),
        ("DELETE", f"{base}/{bob.user_id}", None, 404),
        ("GET", f"/v1/users/@me/notes/{bob.user_id}", None, 404),
        ("GET", "/v1/users/@me/notes", None, 200),
        ("POST", base, {"username": bob_tag["username"], "discriminator": bob_tag["discriminator"]}, 200),
        ("DELETE", f"{base}/{bob.user_id}", None, 204),
        ("POST", f"{base}/{bob.user_id}", None, 200),
        ("PUT", f"{base}/{bob.user_id}", {"type": 2}, 200),
        ("PUT", f"/v1/users/@me/notes/{bob.user_id}", {"note": "carol's own"}, 204),
    ]
    for method, path, body, status in calls:
        response = client.request(method, path, headers=carol.auth, **({"json": body} if body is not None else {}))
        assert response.status_code == status, f"{method} {path}: {response.text}"
        assert secret not in response.text and alice.user_id not in response.text
    # Carol's block took back her own request to Bob; Alice's and Bob's friendship, nickname and note stand.
    assert state() == before
    assert [(r["id"], r["type"]) for r in _ok(client.get(base, headers=carol.auth))] == [(bob.user_id, 2)]
    assert _ok(client.get("/v1/users/@me/notes", headers=carol.auth)) == {bob.user_id: "carol's own"}
