"""Gateway delivery scoping: every event reaches exactly its audience, and nobody else.

Each test connects the people involved, makes changes through the REST API (which publishes the
events) and checks both sides: who receives what (with the payload), and who receives nothing.
Silence is proved with a marker where one exists: an event the silent client *would* receive,
published after the forbidden one. The hub routes events one at a time in the order they were
committed, so a marker that arrives with nothing before it proves the forbidden event was never
sent, without waiting on a timer. Where no marker can be ordered after the event (presence, which
the hub announces from its own tasks), a short ``assert_silent`` does the job.

Members join guilds in setup through ``add_member`` *before* they connect: that shortcut publishes
no GUILD_CREATE, so a connection opened earlier would not learn of the membership (REST joins do).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed

from service.gateway import state as gateway_state
from service.permissions import Permission
from tests.conftest import PASSWORD
from tests.gateway import send_message, wait_for

VIEW = str(int(Permission.VIEW_CHANNEL))
THUMBS = quote("\N{THUMBS UP SIGN}")
FRIEND, BLOCKED, INCOMING, OUTGOING = 1, 2, 3, 4
NOISE = ("PRESENCE_UPDATE",)  # people connecting and leaving: not what these tests are about


# --- helpers -------------------------------------------------------------------------------


def connect(gateway, account, **extra):
    """A connection that has identified as ``account`` and read its READY."""
    connection = gateway()
    ready = connection.identify(account.token, **extra)
    assert ready["user"]["id"] == account.user_id
    connection.ready = ready
    return connection


def _matches(payload: dict, where) -> bool:
    if callable(where):
        return bool(where(payload))
    return all(payload.get(key) == value for key, value in where.items())


def expect(connection, name: str, where=None, timeout: float = 5.0, **fields) -> dict:
    """The next ``name`` dispatch matching ``fields`` (or the predicate ``where``); other dispatches are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {name} matching {where or fields} within {timeout} s")
        payload = connection.dispatch(name, timeout=remaining)
        if _matches(payload, where or fields):
            return payload


def nothing_until(connection, name: str, where=None, ignore=NOISE, timeout: float = 5.0, **fields) -> list[dict]:
    """Read up to the marker dispatch ``name`` matching ``fields``: any other dispatch on the way fails the test.
    Answers the frames read, the marker last."""
    deadline = time.monotonic() + timeout
    frames = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the marker {name} {where or fields} never came; saw "
                                 f"{[f.get('t') for f in frames]}")
        try:
            frame = connection.recv(timeout=remaining)
        except TimeoutError:
            continue
        frames.append(frame)
        if frame["op"] != 0 or frame["t"] in ignore:
            continue
        if frame["t"] == name and _matches(frame["d"], where or fields):
            return frames
        raise AssertionError(f"unexpected {frame['t']} before the marker {name}: {frame['d']}")




def note(client, account, about) -> str:
    """Change ``account``'s note on ``about``: a USER_NOTE_UPDATE only ``account``'s sessions hear. The note."""
    text = f"note {uuid.uuid4().hex[:8]}"
    response = client.put(f"/v1/users/@me/notes/{about.user_id}", json={"note": text}, headers=account.auth)
    assert response.status_code == 204, response.text
    return text


def quiet_until_note(client, connection, account, about, ignore=NOISE) -> None:
    """``connection`` (one of ``account``'s) heard nothing before ``account``'s own next note change."""
    text = note(client, account, about)
    nothing_until(connection, "USER_NOTE_UPDATE", ignore=ignore, note=text)


def create_channel(client, owner, guild, name: str, **body) -> dict:
    response = client.post(f"/v1/guilds/{guild['id']}/channels", json={"type": 0, "name": name, **body},
                           headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()


def create_role(client, owner, guild, name: str, permissions: int = 0) -> dict:
    response = client.post(f"/v1/guilds/{guild['id']}/roles", json={"name": name, "permissions": str(permissions)},
                           headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()


def give_role(client, owner, guild, account, role, *, add: bool = True) -> None:
    url = f"/v1/guilds/{guild['id']}/members/{account.user_id}/roles/{role['id']}"
    response = (client.put if add else client.delete)(url, headers=owner.auth)
    assert response.status_code == 204, response.text


def overwrite(target_id, *, allow: int = 0, deny: int = 0, kind: int = 0) -> dict:
    return {"id": str(target_id), "type": kind, "allow": str(allow), "deny": str(deny)}


def befriend(client, a, b) -> None:
    assert client.put(f"/v1/users/@me/relationships/{b.user_id}", headers=a.auth).status_code == 200
    assert client.put(f"/v1/users/@me/relationships/{a.user_id}", headers=b.auth).json()["type"] == FRIEND


def author(payload: dict) -> str:
    return payload["author"]["id"]


# --- guilds: members and strangers ---------------------------------------------------------


def test_members_hear_guild_events_and_strangers_hear_none(client, register, make_guild, add_member, gateway):
    owner, member, stranger, neighbour = register(), register(), register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    add_member(member, guild)
    elsewhere = make_guild(owner, name="Elsewhere")  # the neighbour shares a guild with the owner, not this one
    add_member(neighbour, elsewhere)
    o, m, s, n = (connect(gateway, a) for a in (owner, member, stranger, neighbour))
    assert [g["id"] for g in m.ready["guilds"]] == [gid] and s.ready["guilds"] == []

    message = send_message(client, owner, general, "hello members")
    assert client.post(f"/v1/channels/{general}/typing", headers=member.auth).status_code == 204
    reaction_url = f"/v1/channels/{general}/messages/{message['id']}/reactions/{THUMBS}/@me"
    assert client.put(reaction_url, headers=member.auth).status_code == 204
    edited = client.patch(f"/v1/channels/{general}/messages/{message['id']}", json={"content": "hello, edited"},
                          headers=owner.auth)
    assert edited.status_code == 200
    assert client.delete(reaction_url, headers=member.auth).status_code == 204
    channel = create_channel(client, owner, guild, "news")
    assert client.patch(f"/v1/channels/{channel['id']}", json={"topic": "Read me"}, headers=owner.auth).status_code == 200
    role = create_role(client, owner, guild, "Gardener")
    assert client.patch(f"/v1/guilds/{gid}/roles/{role['id']}", json={"name": "Head gardener"},
                        headers=owner.auth).status_code == 200
    assert client.patch(f"/v1/guilds/{gid}/members/{member.user_id}", json={"nick": "Sprout"},
                        headers=owner.auth).status_code == 200
    assert client.patch(f"/v1/guilds/{gid}", json={"name": "Renamed"}, headers=owner.auth).status_code == 200
    assert client.delete(f"/v1/channels/{general}/messages/{message['id']}", headers=owner.auth).status_code == 204
    assert client.delete(f"/v1/channels/{channel['id']}", headers=owner.auth).status_code == 204

    for who in (o, m):  # both members hear every event, in the order it happened, with its payload
        created = expect(who, "MESSAGE_CREATE", id=message["id"])
        assert created["content"] == "hello members" and created["channel_id"] == general
        assert created["guild_id"] == gid and author(created) == owner.user_id and created["channel_type"] == 0
        typing = expect(who, "TYPING_START", channel_id=general)
        assert typing["user_id"] == member.user_id and typing["guild_id"] == gid
        added = expect(who, "MESSAGE_REACTION_ADD", message_id=message["id"])
        assert added["user_id"] == member.user_id and added["emoji"]["name"] == "\N{THUMBS UP SIGN}"
        assert added["channel_id"] == general and added["guild_id"] == gid
        updated = expect(who, "MESSAGE_UPDATE", id=message["id"])
        assert updated["content"] == "hello, edited" and updated["edited_timestamp"] is not None
        removed = expect(who, "MESSAGE_REACTION_REMOVE", message_id=message["id"])
        assert removed["user_id"] == member.user_id
        made = expect(who, "CHANNEL_CREATE", id=channel["id"])
        assert made["name"] == "news" and made["guild_id"] == gid
        assert expect(who, "CHANNEL_UPDATE", id=channel["id"])["topic"] == "Read me"
        role_made = expect(who, "GUILD_ROLE_CREATE", guild_id=gid)
        assert role_made["role"]["id"] == role["id"] and role_made["role"]["name"] == "Gardener"
        assert expect(who, "GUILD_ROLE_UPDATE", guild_id=gid)["role"]["name"] == "Head gardener"
        member_update = expect(who, "GUILD_MEMBER_UPDATE", guild_id=gid)
        assert member_update["user"]["id"] == member.user_id and member_update["nick"] == "Sprout"
        guild_update = expect(who, "GUILD_UPDATE", id=gid)
        assert guild_update["name"] == "Renamed"
        deleted = expect(who, "MESSAGE_DELETE", id=message["id"])
        assert deleted == {"id": message["id"], "channel_id": general, "guild_id": gid}
        assert expect(who, "CHANNEL_DELETE", id=channel["id"])["guild_id"] == gid

    # Neither the stranger nor the owner's neighbour from another guild heard any of it.
    quiet_until_note(client, s, stranger, owner)
    quiet_until_note(client, n, neighbour, owner)


def test_a_guild_event_reaches_every_session_of_a_member(client, register, make_guild, add_member, gateway):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    first, second = connect(gateway, member), connect(gateway, member)
    message = send_message(client, owner, guild["system_channel_id"], "twice")
    for connection in (first, second):
        assert nothing_until(connection, "MESSAGE_CREATE", id=message["id"])[-1]["d"]["content"] == "twice"


# --- leaving a guild -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["kick", "ban", "leave"])
def test_a_member_who_is_removed_stops_hearing_the_guild(client, register, make_guild, add_member, gateway, how):
    owner, gone, witness = register(), register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    for account in (gone, witness):
        add_member(account, guild)
    o, g, w = (connect(gateway, a) for a in (owner, gone, witness))
    before = send_message(client, owner, general, "before")
    assert expect(g, "MESSAGE_CREATE", id=before["id"])["content"] == "before"

    if how == "kick":
        response = client.delete(f"/v1/guilds/{gid}/members/{gone.user_id}", headers=owner.auth)
    elif how == "ban":
        response = client.put(f"/v1/guilds/{gid}/bans/{gone.user_id}", headers=owner.auth)
    else:
        response = client.delete(f"/v1/users/@me/guilds/{gid}", headers=gone.auth)
    assert response.status_code == 204, response.text

    # The one who left hears GUILD_DELETE and nothing before it (not even their own GUILD_MEMBER_REMOVE).
    assert nothing_until(g, "GUILD_DELETE", id=gid)[-1]["d"] == {"id": gid}
    for who in (o, w):
        assert expect(who, "GUILD_MEMBER_REMOVE", guild_id=gid)["user"]["id"] == gone.user_id
    if how == "ban":  # the ban itself only to those who may read the ban list (BAN_MEMBERS)
        assert expect(o, "GUILD_BAN_ADD", guild_id=gid)["user"]["id"] == gone.user_id

    # Afterwards the guild's messages, typing, reactions, channels, roles and members go on without them.
    after = send_message(client, owner, general, "after")
    assert client.post(f"/v1/channels/{general}/typing", headers=witness.auth).status_code == 204
    assert client.put(f"/v1/channels/{general}/messages/{after['id']}/reactions/{THUMBS}/@me",
                      headers=witness.auth).status_code == 204
    channel = create_channel(client, owner, guild, "later")
    create_role(client, owner, guild, "Later")
    assert client.patch(f"/v1/guilds/{gid}/members/{witness.user_id}", json={"nick": "Still here"},
                        headers=owner.auth).status_code == 200
    assert client.patch(f"/v1/guilds/{gid}", json={"name": "Without them"}, headers=owner.auth).status_code == 200
    assert expect(w, "MESSAGE_CREATE", id=after["id"])["content"] == "after"
    assert expect(w, "TYPING_START", channel_id=general)["user_id"] == witness.user_id
    assert expect(w, "MESSAGE_REACTION_ADD", message_id=after["id"])["user_id"] == witness.user_id
    assert expect(w, "CHANNEL_CREATE", id=channel["id"])["name"] == "later"
    assert expect(w, "GUILD_ROLE_CREATE", guild_id=gid)["role"]["name"] == "Later"
    assert expect(w, "GUILD_MEMBER_UPDATE", guild_id=gid)["nick"] == "Still here"
    assert expect(w, "GUILD_UPDATE", id=gid)["name"] == "Without them"
    assert "GUILD_BAN_ADD" not in [f.get("t") for f in w.seen]  # a plain member may not read the ban list
    quiet_until_note(client, g, gone, owner)


def test_joining_through_an_invite_starts_delivery_on_the_same_connection(client, register, make_guild, gateway):
    owner, joiner = register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    o, j = connect(gateway, owner), connect(gateway, joiner)
    assert j.ready["guilds"] == []
    invite = client.post(f"/v1/channels/{general}/invites", json={"max_age": 0}, headers=owner.auth).json()
    before = send_message(client, owner, general, "before you came")
    assert client.post(f"/v1/invites/{invite['code']}", headers=joiner.auth).status_code == 200

    # The joiner heard neither the invite nor the earlier message: the first thing is the guild itself.
    joined = nothing_until(j, "GUILD_CREATE", id=gid)[-1]["d"]
    assert joined["member_count"] == 2 and general in [c["id"] for c in joined["channels"]]
    assert expect(o, "MESSAGE_CREATE", id=before["id"])
    assert expect(o, "GUILD_MEMBER_ADD", guild_id=gid)["user"]["id"] == joiner.user_id

    welcome = send_message(client, owner, general, "welcome")
    assert client.post(f"/v1/channels/{general}/typing", headers=owner.auth).status_code == 204
    assert client.patch(f"/v1/guilds/{gid}", json={"name": "Bigger"}, headers=owner.auth).status_code == 200
    frames = [f for f in nothing_until(j, "GUILD_UPDATE", id=gid, ignore=(*NOISE, "MESSAGE_CREATE", "TYPING_START"))
              if f["op"] == 0 and f["t"] not in NOISE]
    assert [f["t"] for f in frames] == ["MESSAGE_CREATE", "TYPING_START", "GUILD_UPDATE"]
    assert frames[0]["d"]["id"] == welcome["id"] and frames[0]["d"]["content"] == "welcome"
    assert frames[1]["d"]["channel_id"] == general and frames[2]["d"]["name"] == "Bigger"


def test_deleting_a_guild_tells_every_member(client, register, make_guild, add_member, gateway):
    owner, first, second, stranger = register(), register(), register(), register()
    guild = make_guild(owner)
    gid = guild["id"]
    for account in (first, second):
        add_member(account, guild)
    connections = [connect(gateway, a) for a in (owner, first, second)]
    s = connect(gateway, stranger)
    assert client.post(f"/v1/guilds/{gid}/delete", json={"password": PASSWORD}, headers=owner.auth).status_code == 204
    for connection in connections:
        assert nothing_until(connection, "GUILD_DELETE", id=gid)[-1]["d"] == {"id": gid}
    quiet_until_note(client, s, stranger, owner)


# --- channel permissions -------------------------------------------------------------------


def test_denying_view_channel_to_everyone_stops_delivery_until_restored(client, register, make_guild, add_member,
                                                                        gateway):
    owner, member = register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    add_member(member, guild)
    secret = create_channel(client, owner, guild, "secret")["id"]
    o, m = connect(gateway, owner), connect(gateway, member)

    hide = client.put(f"/v1/channels/{secret}/permissions/{gid}", json={"type": 0, "deny": VIEW}, headers=owner.auth)
    assert hide.status_code == 204
    assert expect(o, "CHANNEL_UPDATE", id=secret)["permission_overwrites"] == [overwrite(gid, deny=int(VIEW))]
    hidden = send_message(client, owner, secret, "hidden")
    assert client.post(f"/v1/channels/{secret}/typing", headers=owner.auth).status_code == 204
    visible = send_message(client, owner, general, "visible")
    assert expect(o, "MESSAGE_CREATE", id=hidden["id"])["channel_id"] == secret  # the owner always sees
    assert expect(o, "MESSAGE_CREATE", id=visible["id"])
    # The member heard neither the CHANNEL_UPDATE that hid it, nor the message or typing in it.
    nothing_until(m, "MESSAGE_CREATE", id=visible["id"])

    assert client.delete(f"/v1/channels/{secret}/permissions/{gid}", headers=owner.auth).status_code == 204
    assert nothing_until(m, "CHANNEL_UPDATE", id=secret)[-1]["d"]["permission_overwrites"] == []
    back = send_message(client, owner, secret, "back")
    assert nothing_until(m, "MESSAGE_CREATE", id=back["id"])[-1]["d"]["content"] == "back"


def test_denying_view_channel_to_a_role_stops_only_its_holders(client, register, make_guild, add_member, gateway):
    owner, muted, other = register(), register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    for account in (muted, other):
        add_member(account, guild)
    side = create_channel(client, owner, guild, "side")["id"]
    role = create_role(client, owner, guild, "Muted")
    give_role(client, owner, guild, muted, role)
    o, mu, ot = (connect(gateway, a) for a in (owner, muted, other))

    denied = client.put(f"/v1/channels/{general}/permissions/{role['id']}", json={"type": 0, "deny": VIEW},
                        headers=owner.auth)
    assert denied.status_code == 204
    hidden = send_message(client, owner, general, "not for the muted")
    elsewhere = send_message(client, owner, side, "for everyone")
    for who in (o, ot):
        assert expect(who, "CHANNEL_UPDATE", id=general)["permission_overwrites"] == [
            overwrite(role["id"], deny=int(VIEW))]
        assert expect(who, "MESSAGE_CREATE", id=hidden["id"])["channel_id"] == general
        assert expect(who, "MESSAGE_CREATE", id=elsewhere["id"])["channel_id"] == side
    nothing_until(mu, "MESSAGE_CREATE", id=elsewhere["id"])

    give_role(client, owner, guild, muted, role, add=False)  # losing the role gives the channel back
    assert nothing_until(mu, "GUILD_MEMBER_UPDATE", guild_id=gid)[-1]["d"]["roles"] == []
    again = send_message(client, owner, general, "welcome back")
    assert nothing_until(mu, "MESSAGE_CREATE", id=again["id"])[-1]["d"]["content"] == "welcome back"


def test_a_role_allowed_into_a_hidden_channel_brings_its_messages(client, register, make_guild, add_member, gateway):
    owner, member = register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    add_member(member, guild)
    role = create_role(client, owner, guild, "Insider")
    o, m = connect(gateway, owner), connect(gateway, member)

    vault = create_channel(client, owner, guild, "vault", permission_overwrites=[
        overwrite(gid, deny=int(VIEW)), overwrite(role["id"], allow=int(VIEW))])["id"]
    locked = send_message(client, owner, vault, "locked")
    marker = send_message(client, owner, general, "marker")
    assert expect(o, "CHANNEL_CREATE", id=vault)["name"] == "vault"
    assert expect(o, "MESSAGE_CREATE", id=locked["id"])
    nothing_until(m, "MESSAGE_CREATE", id=marker["id"])  # neither the hidden channel's creation nor its message

    give_role(client, owner, guild, member, role)
    assert nothing_until(m, "GUILD_MEMBER_UPDATE", guild_id=gid)[-1]["d"]["roles"] == [role["id"]]
    unlocked = send_message(client, owner, vault, "unlocked")
    got = nothing_until(m, "MESSAGE_CREATE", id=unlocked["id"])[-1]["d"]
    assert got["channel_id"] == vault and got["content"] == "unlocked"
    assert expect(o, "MESSAGE_CREATE", id=unlocked["id"])


def test_everyone_losing_view_channel_at_guild_level(client, register, make_guild, add_member, gateway):
    owner, member, trusted = register(), register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    for account in (member, trusted):
        add_member(account, guild)
    role = create_role(client, owner, guild, "Trusted", int(Permission.VIEW_CHANNEL))
    give_role(client, owner, guild, trusted, role)
    everyone = next(r for r in client.get(f"/v1/guilds/{gid}/roles", headers=owner.auth).json() if r["id"] == gid)
    o, m, t = (connect(gateway, a) for a in (owner, member, trusted))

    blind = str(int(everyone["permissions"]) & ~int(Permission.VIEW_CHANNEL))
    assert client.patch(f"/v1/guilds/{gid}/roles/{gid}", json={"permissions": blind},
                        headers=owner.auth).status_code == 200
    unseen = send_message(client, owner, general, "unseen")
    assert client.patch(f"/v1/guilds/{gid}", json={"name": "Marker"}, headers=owner.auth).status_code == 200
    for who in (o, t):
        assert expect(who, "MESSAGE_CREATE", id=unseen["id"])
    assert expect(m, "GUILD_ROLE_UPDATE", guild_id=gid)["role"]["permissions"] == blind  # guild-wide: still heard
    nothing_until(m, "GUILD_UPDATE", id=gid)

    assert client.patch(f"/v1/guilds/{gid}/roles/{gid}", json={"permissions": everyone["permissions"]},
                        headers=owner.auth).status_code == 200
    seen = send_message(client, owner, general, "seen")
    assert nothing_until(m, "GUILD_ROLE_UPDATE", guild_id=gid)
    assert nothing_until(m, "MESSAGE_CREATE", id=seen["id"])


def test_a_channel_update_that_hides_it_goes_only_to_who_still_sees(client, register, make_guild, add_member,
                                                                    gateway):
    owner, insider, outsider = register(), register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    for account in (insider, outsider):
        add_member(account, guild)
    role = create_role(client, owner, guild, "Insider")
    give_role(client, owner, guild, insider, role)
    channel = create_channel(client, owner, guild, "plans")["id"]
    o, i, out = (connect(gateway, a) for a in (owner, insider, outsider))

    wanted = [overwrite(gid, deny=int(VIEW)), overwrite(role["id"], allow=int(VIEW))]
    changed = client.patch(f"/v1/channels/{channel}", json={"topic": "The secret plan", "permission_overwrites": wanted},
                           headers=owner.auth)
    assert changed.status_code == 200, changed.text
    marker = send_message(client, owner, general, "marker")
    for who in (o, i):
        update = nothing_until(who, "CHANNEL_UPDATE", id=channel)[-1]["d"]
        assert update["topic"] == "The secret plan"
        assert sorted(update["permission_overwrites"], key=lambda x: x["id"]) == sorted(wanted, key=lambda x: x["id"])
    frames = nothing_until(out, "MESSAGE_CREATE", id=marker["id"])
    assert "The secret plan" not in json.dumps(frames)

    # Deleting the hidden channel is news only to those who could see it.
    assert client.delete(f"/v1/channels/{channel}", headers=owner.auth).status_code == 204
    marker = send_message(client, owner, general, "marker 2")
    for who in (o, i):
        assert expect(who, "CHANNEL_DELETE", id=channel)["name"] == "plans"
    nothing_until(out, "MESSAGE_CREATE", id=marker["id"])


# --- invites -------------------------------------------------------------------------------


def test_invite_events_go_only_to_who_manages_the_channel(client, register, make_guild, add_member, gateway):
    owner, manager, member = register(), register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    for account in (manager, member):
        add_member(account, guild)
    role = create_role(client, owner, guild, "Channel manager", int(Permission.MANAGE_CHANNELS))
    give_role(client, owner, guild, manager, role)
    o, ma, me = (connect(gateway, a) for a in (owner, manager, member))

    invite = client.post(f"/v1/channels/{general}/invites", json={"max_age": 0}, headers=owner.auth).json()
    marker = send_message(client, owner, general, "after the invite")
    for who in (o, ma):
        created = nothing_until(who, "INVITE_CREATE", code=invite["code"])[-1]["d"]
        assert created["channel"]["id"] == general and created["guild"]["id"] == gid
        assert created["inviter"]["id"] == owner.user_id
    nothing_until(me, "MESSAGE_CREATE", id=marker["id"])

    assert client.delete(f"/v1/invites/{invite['code']}", headers=owner.auth).status_code == 204
    marker = send_message(client, owner, general, "after the deletion")
    for who in (o, ma):
        deleted = expect(who, "INVITE_DELETE", code=invite["code"])
        assert deleted == {"code": invite["code"], "channel_id": general, "guild_id": gid}
    nothing_until(me, "MESSAGE_CREATE", id=marker["id"])


# --- DMs and group DMs ---------------------------------------------------------------------


def test_dm_messages_reach_both_recipients_and_nobody_else(client, register, gateway):
    alice, bob, carol = register(), register(), register()
    a, b, c = (connect(gateway, x) for x in (alice, bob, carol))
    dm = client.post("/v1/users/@me/channels", json={"recipient_id": bob.user_id}, headers=alice.auth).json()["id"]
    assert [u["id"] for u in expect(a, "CHANNEL_CREATE", id=dm)["recipients"]] == [bob.user_id]
    assert [u["id"] for u in expect(b, "CHANNEL_CREATE", id=dm)["recipients"]] == [alice.user_id]

    message = send_message(client, alice, dm, "just between us")
    assert client.post(f"/v1/channels/{dm}/typing", headers=bob.auth).status_code == 204
    assert client.put(f"/v1/channels/{dm}/messages/{message['id']}/reactions/{THUMBS}/@me",
                      headers=bob.auth).status_code == 204
    for who in (a, b):
        got = expect(who, "MESSAGE_CREATE", id=message["id"])
        assert got["channel_id"] == dm and got["guild_id"] is None and got["content"] == "just between us"
        assert expect(who, "TYPING_START", channel_id=dm)["user_id"] == bob.user_id
        assert expect(who, "MESSAGE_REACTION_ADD", message_id=message["id"])["user_id"] == bob.user_id
    quiet_until_note(client, c, carol, alice)


def test_group_dm_recipients_start_and_stop_hearing_it(client, register, gateway):
    alice, bob, carol = register(), register(), register()
    befriend(client, alice, bob)
    befriend(client, alice, carol)
    group = client.post("/v1/users/@me/channels", json={"recipients": [bob.user_id]}, headers=alice.auth).json()["id"]
    a, b, c = (connect(gateway, x) for x in (alice, bob, carol))

    before = send_message(client, alice, group, "before carol")
    assert expect(b, "MESSAGE_CREATE", id=before["id"])
    quiet_until_note(client, c, carol, alice)

    assert client.put(f"/v1/channels/{group}/recipients/{carol.user_id}", headers=alice.auth).status_code == 204
    created = nothing_until(c, "CHANNEL_CREATE", id=group)[-1]["d"]
    assert sorted(u["id"] for u in created["recipients"]) == sorted([alice.user_id, bob.user_id])
    assert expect(b, "CHANNEL_RECIPIENT_ADD", channel_id=group)["user"]["id"] == carol.user_id
    during = send_message(client, bob, group, "hi carol")
    assert nothing_until(c, "MESSAGE_CREATE", id=during["id"])[-1]["d"]["content"] == "hi carol"
    for who in (a, b):
        assert expect(who, "MESSAGE_CREATE", id=during["id"])

    assert client.delete(f"/v1/channels/{group}/recipients/{carol.user_id}", headers=alice.auth).status_code == 204
    assert nothing_until(c, "CHANNEL_DELETE", id=group)
    for who in (a, b):
        assert expect(who, "CHANNEL_RECIPIENT_REMOVE", channel_id=group)["user"]["id"] == carol.user_id
    after = send_message(client, alice, group, "after carol")
    assert client.post(f"/v1/channels/{group}/typing", headers=bob.auth).status_code == 204
    assert expect(b, "MESSAGE_CREATE", id=after["id"])
    quiet_until_note(client, c, carol, alice)


# --- user events ---------------------------------------------------------------------------


def test_user_events_reach_every_session_of_that_user_only(client, register, make_guild, add_member, gateway):
    alice, bob, carol = register(), register(), register()
    guild = make_guild(alice)
    general = guild["system_channel_id"]
    add_member(bob, guild)
    message = send_message(client, alice, general, "read me")
    a1, a2, b1, b2 = connect(gateway, alice), connect(gateway, alice), connect(gateway, bob), connect(gateway, bob)

    text = note(client, alice, bob)
    acked = client.post(f"/v1/channels/{general}/messages/{message['id']}/ack", json={}, headers=alice.auth)
    assert acked.status_code == 204, acked.text
    asked = client.put(f"/v1/users/@me/relationships/{carol.user_id}", headers=alice.auth)
    assert asked.status_code == 200
    for connection in (a1, a2):
        frames = [f for f in nothing_until(connection, "RELATIONSHIP_ADD", id=carol.user_id,
                                                ignore=(*NOISE, "USER_NOTE_UPDATE", "MESSAGE_ACK"))
                  if f["op"] == 0 and f["t"] not in NOISE]
        assert [f["t"] for f in frames] == ["USER_NOTE_UPDATE", "MESSAGE_ACK", "RELATIONSHIP_ADD"]
        assert frames[0]["d"] == {"id": bob.user_id, "note": text}
        assert frames[1]["d"]["channel_id"] == general and frames[1]["d"]["message_id"] == message["id"]
        assert frames[2]["d"]["type"] == OUTGOING and frames[2]["d"]["user"]["id"] == carol.user_id
    mark = note(client, bob, carol)  # bob's sessions heard none of alice's own events, but do hear bob's
    for connection in (b1, b2):
        nothing_until(connection, "USER_NOTE_UPDATE", note=mark)


def test_relationship_events_reach_both_sides_only(client, register, gateway):
    alice, bob, carol = register(), register(), register()
    a, b, c = (connect(gateway, x) for x in (alice, bob, carol))
    assert client.put(f"/v1/users/@me/relationships/{bob.user_id}", headers=alice.auth).status_code == 200
    sent = nothing_until(a, "RELATIONSHIP_ADD", id=bob.user_id)[-1]["d"]
    received = nothing_until(b, "RELATIONSHIP_ADD", id=alice.user_id)[-1]["d"]
    assert (sent["type"], sent["user"]["id"]) == (OUTGOING, bob.user_id)
    assert (received["type"], received["user"]["id"]) == (INCOMING, alice.user_id)

    assert client.put(f"/v1/users/@me/relationships/{alice.user_id}", headers=bob.auth).json()["type"] == FRIEND
    # Accepting turns both rows into a friendship; this API names that event RELATIONSHIP_UPDATE.
    assert nothing_until(a, "RELATIONSHIP_UPDATE", id=bob.user_id)[-1]["d"]["type"] == FRIEND
    assert nothing_until(b, "RELATIONSHIP_UPDATE", id=alice.user_id)[-1]["d"]["type"] == FRIEND

    assert client.delete(f"/v1/users/@me/relationships/{alice.user_id}", headers=bob.auth).status_code == 204
    assert nothing_until(a, "RELATIONSHIP_REMOVE", id=bob.user_id)
    assert nothing_until(b, "RELATIONSHIP_REMOVE", id=alice.user_id)
    quiet_until_note(client, c, carol, alice)


# --- presence ------------------------------------------------------------------------------


def _presence_of(connection, account, status: str, timeout: float = 5.0) -> dict:
    return expect(connection, "PRESENCE_UPDATE", timeout=timeout,
                  where=lambda d: d["user"]["id"] == account.user_id and d["status"] == status)


def _sessions_of(gateway_server, account) -> int:
    return len(gateway_server.hub.by_user.get(int(account.user_id), ()))



def test_presence_reaches_guild_mates_and_friends_only(client, register, make_guild, add_member, gateway,
                                                       gateway_server):
    subject, mate, friend, stranger = register(), register(), register(), register()
    guild = make_guild(subject)
    add_member(mate, guild)
    befriend(client, subject, friend)  # no shared guild: a friend only
    m, f, x = (connect(gateway, a) for a in (mate, friend, stranger))

    first = connect(gateway, subject)
    for who in (m, f):
        online = _presence_of(who, subject, "online")
        assert online["user"]["id"] == subject.user_id and online["afk"] is False
    quiet_until_note(client, x, stranger, subject, ignore=())  # not even a PRESENCE_UPDATE

    second = connect(gateway, subject)  # another session of someone already online changes nothing
    first.close()
    assert wait_for(lambda: _sessions_of(gateway_server, subject) == 1)
    for who in (m, f):
        who.assert_silent(0.3, ignore=())

    second.close()  # the last session closes normally (1000): offline
    for who in (m, f):
        assert _presence_of(who, subject, "offline")["user"]["id"] == subject.user_id
    x.assert_silent(0.3, ignore=())


# --- found by review: each failed before its fix --------------------------------------------


def test_reordering_does_not_reveal_hidden_channels(client, register, make_guild, add_member, gateway):
    owner, member = register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    add_member(member, guild)
    secret = create_channel(client, owner, guild, "secret-plans", topic="Nobody may know",
                            permission_overwrites=[overwrite(gid, deny=int(VIEW))])["id"]
    o, m = connect(gateway, owner), connect(gateway, member)
    assert secret not in [c["id"] for c in client.get(f"/v1/guilds/{gid}/channels", headers=member.auth).json()]

    moved = client.patch(f"/v1/guilds/{gid}/channels", json=[{"id": secret, "position": 0}], headers=owner.auth)
    assert moved.status_code == 204, moved.text
    marker = send_message(client, owner, general, "marker")
    assert secret in [c["id"] for c in expect(o, "CHANNEL_UPDATE_BULK", guild_id=gid)["channels"]]
    frames = nothing_until(m, "MESSAGE_CREATE", id=marker["id"], ignore=(*NOISE, "CHANNEL_UPDATE_BULK"))
    assert secret not in json.dumps(frames) and "Nobody may know" not in json.dumps(frames)


def test_joining_a_guild_while_identifying_still_delivers_it(client, register, make_guild, gateway, monkeypatch):
    owner, joiner = register(), register()
    guild = make_guild(owner)
    general = guild["system_channel_id"]
    invite = client.post(f"/v1/channels/{general}/invites", json={"max_age": 0}, headers=owner.auth).json()
    o = connect(gateway, owner)
    read, proceed = threading.Event(), threading.Event()
    original = gateway_state.guild_ids_of

    def slow_guild_ids(session, user_id):
        ids = original(session, user_id)
        if user_id == int(joiner.user_id):
            read.set()
            proceed.wait(5)
        return ids

    monkeypatch.setattr(gateway_state, "guild_ids_of", slow_guild_ids)
    j = gateway()
    j.hello()
    j.send(2, {"token": joiner.token, "properties": {"os": "linux", "browser": "pytest", "device": "pytest"}})
    assert read.wait(5)
    assert client.post(f"/v1/invites/{invite['code']}", headers=joiner.auth).status_code == 200
    text = note(client, owner, joiner)  # once the owner hears this, the router has passed the GUILD_CREATE
    expect(o, "USER_NOTE_UPDATE", note=text)
    proceed.set()
    ready = j.dispatch("READY")
    assert guild["id"] in [g["id"] for g in ready["guilds"]]  # READY, read later, knows the guild
    message = send_message(client, owner, general, "do you hear me?")
    assert expect(j, "MESSAGE_CREATE", id=message["id"], timeout=2.0)


def test_a_timeout_that_runs_out_restores_invite_events(client, register, make_guild, add_member, gateway):
    owner, manager = register(), register()
    guild = make_guild(owner)
    gid, general = guild["id"], guild["system_channel_id"]
    add_member(manager, guild)
    role = create_role(client, owner, guild, "Channel manager", int(Permission.MANAGE_CHANNELS))
    give_role(client, owner, guild, manager, role)
    m = connect(gateway, manager)
    until = datetime.now(UTC) + timedelta(seconds=1.5)
    timed = client.patch(f"/v1/guilds/{gid}/members/{manager.user_id}",
                         json={"communication_disabled_until": until.isoformat()}, headers=owner.auth)
    assert timed.status_code == 200, timed.text
    assert expect(m, "GUILD_MEMBER_UPDATE", guild_id=gid)["communication_disabled_until"] is not None
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.2)
    # The timeout is over: REST lets the manager list the channel's invites again.
    assert client.get(f"/v1/channels/{general}/invites", headers=manager.auth).status_code == 200
    invite = client.post(f"/v1/channels/{general}/invites", json={"max_age": 0}, headers=owner.auth).json()
    marker = send_message(client, owner, general, "marker")
    frames = nothing_until(m, "MESSAGE_CREATE", id=marker["id"], ignore=(*NOISE, "INVITE_CREATE"))
    assert [f["d"]["code"] for f in frames if f.get("t") == "INVITE_CREATE"] == [invite["code"]]


def test_a_logged_out_session_hears_nothing_more(client, register, gateway):
    alice, bob = register(), register()
    a, b = connect(gateway, alice), connect(gateway, bob)
    assert client.post("/v1/auth/logout", headers=alice.auth).status_code == 204
    dm = client.post("/v1/users/@me/channels", json={"recipient_id": alice.user_id}, headers=bob.auth).json()["id"]
    message = send_message(client, bob, dm, "are you there?")
    assert expect(b, "MESSAGE_CREATE", id=message["id"])
    heard = []
    with pytest.raises(ConnectionClosed) as closed:  # the session ends: 4006, and nothing after the logout
        deadline = time.monotonic() + 5
        while (remaining := deadline - time.monotonic()) > 0:
            frame = a.recv(timeout=remaining)
            if frame["op"] == 0 and frame["t"] not in NOISE:
                heard.append(frame["t"])
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4006
    assert heard == []


def test_an_account_put_under_review_is_closed_with_4006(client, register, gateway):
    alice = register()
    a = connect(gateway, alice)
    response = client.post(f"/v1/test/users/{alice.user_id}/security-flags", json={"pending_manual_verification": True})
    assert response.status_code == 200, response.text
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            a.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4006
    again = gateway()  # and it cannot identify again while under review
    again.hello()
    again.send(2, {"token": alice.token, "properties": {}})
    assert again.wait_closed() == 4004
