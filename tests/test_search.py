"""Message search (openapi/search.yaml): full text, filters, paging, and only what the caller may read."""

from __future__ import annotations

from service.models import Attachment
from service.permissions import Permission

SEARCH = "/v1/search/messages"


def _general(guild) -> str:
    return guild["system_channel_id"]


def _send(client, account, channel_id, content, **body) -> dict:
    response = client.post(f"/v1/channels/{channel_id}/messages", json={"content": content, **body},
                           headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _search(client, account, **body) -> dict:
    response = client.post(SEARCH, json=body, headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _found(client, account, **body) -> list[str]:
    """Ids of the matching messages, in the order answered (newest first unless sorted otherwise)."""
    return [m["id"] for m in _search(client, account, **body)["messages"]]


def _in_guild(guild, **body) -> dict:
    return {"context_guild_id": guild["id"], **body}


def _second_text_channel(client, owner, guild, name="second") -> str:
    response = client.post(f"/v1/guilds/{guild['id']}/channels", json={"type": 0, "name": name}, headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _deny(client, owner, channel, target_id, permission: Permission) -> None:
    response = client.put(f"/v1/channels/{channel}/permissions/{target_id}",
                          json={"type": 1, "deny": str(int(permission))}, headers=owner.auth)
    assert response.status_code == 204, response.text


def test_matches_whole_words_case_insensitively(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = _general(guild)
    sat = _send(client, owner, channel, "the cat sat on the mat")["id"]
    _send(client, owner, channel, "concatenate these strings")
    shout = _send(client, owner, channel, "CAT! again")["id"]
    _send(client, owner, channel, "many cats here")

    result = _search(client, owner, **_in_guild(guild, content="cat"))
    assert [m["id"] for m in result["messages"]] == [shout, sat] and result["total"] == 2
    assert result["messages"][0]["content"] == "CAT! again" and result["messages"][0]["author"]["id"] == owner.user_id
    assert [c["id"] for c in result["channels"]] == [channel]
    assert result["hits_per_page"] == 25 and result["page"] == 1 and "cursor" not in result
    assert _found(client, owner, **_in_guild(guild, content="sat cat")) == [sat]  # every word, any order
    assert _found(client, owner, **_in_guild(guild, exact_phrases=["sat cat"])) == []
    assert _found(client, owner, **_in_guild(guild, exact_phrases=["cat sat"])) == [sat]
    assert _found(client, owner, **_in_guild(guild, contents=["mat", "again"])) == [shout, sat]
    assert _found(client, owner, **_in_guild(guild, content="dog")) == []


def test_text_without_words_and_missing_context_are_refused(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    no_words = client.post(SEARCH, json=_in_guild(guild, content="!!! ..."), headers=owner.auth)
    assert no_words.status_code == 400 and no_words.json()["errors"][0]["path"] == "content"
    phrase = client.post(SEARCH, json=_in_guild(guild, exact_phrases=["ok", "?"]), headers=owner.auth)
    assert phrase.status_code == 400 and phrase.json()["errors"][0]["path"] == "exact_phrases.1"
    no_context = client.post(SEARCH, json={"content": "hello"}, headers=owner.auth)
    assert no_context.status_code == 400 and no_context.json()["errors"][0]["path"] == "context"
    too_many = client.post(SEARCH, json=_in_guild(guild, hits_per_page=26), headers=owner.auth)
    assert too_many.status_code == 400
    assert client.post(SEARCH, json={"scope": "all"}).status_code == 401


def test_pages_and_cursors_agree(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = _general(guild)
    ids = [_send(client, owner, channel, f"alpha number {n}")["id"] for n in range(7)]
    _send(client, owner, channel, "beta")
    newest_first = ids[::-1]

    pages = [_search(client, owner, **_in_guild(guild, content="alpha", hits_per_page=3, page=p)) for p in (1, 2, 3)]
    assert [[m["id"] for m in p["messages"]] for p in pages] == [newest_first[:3], newest_first[3:6], newest_first[6:]]
    assert {p["total"] for p in pages} == {7} and [p["page"] for p in pages] == [1, 2, 3]

    followed, body = [], _in_guild(guild, content="alpha", hits_per_page=3)
    while True:
        page = _search(client, owner, **body)
        followed += [m["id"] for m in page["messages"]]
        if "cursor" not in page:
            break
        body = {**body, "cursor": page["cursor"]}
    assert followed == newest_first

    oldest_first = _found(client, owner, **_in_guild(guild, content="alpha", sort_order="asc", hits_per_page=4))
    assert oldest_first == ids[:4]
    by_relevance = _search(client, owner, **_in_guild(guild, content="alpha", sort_by="relevance", hits_per_page=5))
    rest = _found(client, owner, **_in_guild(guild, content="alpha", sort_by="relevance", hits_per_page=5,
                                             cursor=by_relevance["cursor"]))
    assert sorted([m["id"] for m in by_relevance["messages"]] + rest) == sorted(ids)
    wrong = client.post(SEARCH, json=_in_guild(guild, content="alpha", cursor=by_relevance["cursor"]), headers=owner.auth)
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["path"] == "cursor"


def test_relevance_puts_the_best_match_first(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = _general(guild)
    strong = _send(client, owner, channel, "rocket rocket rocket")["id"]
    weak = _send(client, owner, channel, "a rocket among many many other long and unrelated words here")["id"]
    assert _found(client, owner, **_in_guild(guild, content="rocket")) == [weak, strong]
    assert _found(client, owner, **_in_guild(guild, content="rocket", sort_by="relevance")) == [strong, weak]
    assert _found(client, owner, **_in_guild(guild, content="rocket", sort_by="relevance", sort_order="asc")) == \
        [weak, strong]


def test_filters(client, register, make_guild, add_member, app):
    owner, member = register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    other_channel = _second_text_channel(client, owner, guild)
    first = _send(client, owner, channel, "see https://example.com/page please")
    ping = _send(client, member, channel, f"hey <@{owner.user_id}> @everyone")
    everyone = _send(client, owner, channel, "@everyone meeting now")
    embedded = _send(client, owner, other_channel, "look", embeds=[{"title": "card"}])
    lookalike = _send(client, member, other_channel, "https://example.com.evil.test and https://notexample.com")
    assert everyone["mention_everyone"] is True and ping["mention_everyone"] is False

    def found(**body):
        return set(_found(client, owner, **_in_guild(guild, **body)))

    sent = {m["id"] for m in (first, ping, everyone, embedded, lookalike)}
    assert found() == sent  # no text: every readable message
    assert client.put(f"/v1/channels/{channel}/pins/{first['id']}", headers=owner.auth).status_code == 204
    everything = found()
    [pin_notice] = everything - sent
    assert found(author_id=[member.user_id]) == {ping["id"], lookalike["id"]}
    assert found(exclude_author_id=[member.user_id]) == everything - {ping["id"], lookalike["id"]}
    assert found(author_id=["9999999999999999999"]) == set()  # beyond 64 bits: nobody
    assert found(author_type=["user"]) == everything and found(author_type=["bot", "webhook"]) == set()
    assert found(mentions=[owner.user_id]) == {ping["id"]}
    assert found(exclude_mentions=[owner.user_id]) == everything - {ping["id"]}
    assert found(mention_everyone=True) == {everyone["id"]}
    assert found(pinned=True) == {first["id"]} and first["id"] not in found(pinned=False)
    assert found(has=["link"]) == {first["id"], lookalike["id"]}
    assert found(has=["embed"]) == {embedded["id"]} and found(has=["link", "embed"]) == set()
    assert found(exclude_has=["link", "embed"]) == {ping["id"], everyone["id"], pin_notice}
    assert found(has=["poll"]) == set() and found(embed_type=["article"]) == set()
    assert found(link_hostname=["example.com"]) == {first["id"]}
    assert found(link_hostname=["EXAMPLE.COM.evil.test"]) == {lookalike["id"]}
    assert found(exclude_link_hostname=["example.com"]) == everything - {first["id"]}
    assert found(channel_id=[other_channel]) == {embedded["id"], lookalike["id"]}
    assert found(exclude_channel_id=[other_channel]) == {first["id"], ping["id"], everyone["id"], pin_notice}
    assert found(min_id=ping["id"], max_id=embedded["id"]) == {everyone["id"]}
    in_channel = _search(client, owner, context_channel_id=other_channel)
    assert {m["id"] for m in in_channel["messages"]} == {embedded["id"], lookalike["id"]}

    # Uploads are not sent through the API yet: give the first message an image directly.
    session = app.runtime.db.session
    try:
        session.add(Attachment(id=int(first["id"]) + 1, message_id=int(first["id"]), filename="Photo.PNG",
                               content_type="image/png", size=10, flags=0))
        session.commit()
    finally:
        app.runtime.db.remove()
    assert found(has=["image"]) == {first["id"]} and found(has=["file"]) == {first["id"]}
    assert found(has=["video"]) == set() and found(exclude_has=["file"]) == everything - {first["id"]}
    assert found(attachment_extension=["png"]) == {first["id"]} and found(attachment_extension=[".gif"]) == set()
    assert found(attachment_filename=["Photo.PNG"]) == {first["id"]}
    assert found(exclude_attachment_filename=["Photo.PNG"]) == everything - {first["id"]}


def test_only_channels_the_caller_may_read(client, register, make_guild, add_member):
    owner, member, stranger = register(), register(), register()
    guild = make_guild(owner)
    add_member(member, guild)
    channel = _general(guild)
    hidden = _second_text_channel(client, owner, guild, "hidden")
    no_history = _second_text_channel(client, owner, guild, "no-history")
    public = _send(client, owner, channel, "secret plans public")["id"]
    _send(client, owner, hidden, "secret plans hidden")
    _send(client, owner, no_history, "secret plans unread")
    _deny(client, owner, hidden, member.user_id, Permission.VIEW_CHANNEL)
    _deny(client, owner, no_history, member.user_id, Permission.READ_MESSAGE_HISTORY)

    assert len(_found(client, owner, **_in_guild(guild, content="secret"))) == 3
    for body in (_in_guild(guild, content="secret"), {"scope": "all_guilds", "content": "secret"},
                 {"scope": "all", "content": "secret"}):
        assert _found(client, member, **body) == [public]
        assert _search(client, stranger, **body) == {"messages": [], "channels": [], "total": 0,
                                                     "hits_per_page": 25, "page": 1}
    # Naming what cannot be read finds nothing, and says nothing about it.
    assert _found(client, member, **_in_guild(guild, content="secret", channel_ids=[hidden, no_history])) == []
    assert _found(client, member, context_channel_id=hidden, content="secret") == []
    assert _found(client, stranger, context_channel_id=channel, content="secret") == []
    assert _found(client, member, scope="all_dms", content="secret") == []


def test_nsfw_channels_only_when_asked_or_named(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    nsfw = _second_text_channel(client, owner, guild, "late-night")
    assert client.patch(f"/v1/channels/{nsfw}", json={"nsfw": True}, headers=owner.auth).status_code == 200
    message = _send(client, owner, nsfw, "spicy content")["id"]
    assert _found(client, owner, **_in_guild(guild, content="spicy")) == []
    assert _found(client, owner, **_in_guild(guild, content="spicy", include_nsfw=True)) == [message]
    assert _found(client, owner, **_in_guild(guild, content="spicy", channel_id=[nsfw])) == [message]
    assert _found(client, owner, context_channel_id=nsfw, content="spicy") == [message]


def test_dms_of_others_never_appear(client, register, make_guild, add_member):
    alice, bob, carol = register(), register(), register()
    guild = make_guild(alice)
    add_member(bob, guild)
    add_member(carol, guild)
    dm = client.post("/v1/users/@me/channels", json={"recipient_id": bob.user_id}, headers=alice.auth).json()
    whisper = _send(client, alice, dm["id"], "whisper between us")["id"]
    _send(client, alice, _general(guild), "whisper in public")

    for scope in ("all_dms", "open_dms"):
        assert _found(client, bob, scope=scope, content="whisper") == [whisper]
        assert _found(client, carol, scope=scope, content="whisper") == []
    everywhere = _search(client, bob, scope="open_dms_and_all_guilds", content="whisper")
    assert len(everywhere["messages"]) == 2
    dm_channel = next(c for c in everywhere["channels"] if c["id"] == dm["id"])
    assert [r["id"] for r in dm_channel["recipients"]] == [alice.user_id]
    assert _found(client, bob, context_channel_id=dm["id"], content="whisper") == [whisper]
    assert _found(client, carol, context_channel_id=dm["id"], content="whisper") == []
    assert _found(client, carol, scope="all", content="whisper", channel_ids=[dm["id"]]) == []


def test_edits_and_deletes_are_reflected(client, register, make_guild):
    owner = register()
    guild = make_guild(owner)
    channel = _general(guild)
    message = _send(client, owner, channel, "first draft")["id"]
    others = [_send(client, owner, channel, f"draft {n}")["id"] for n in range(2)]
    url = f"/v1/channels/{channel}/messages"

    assert client.patch(f"{url}/{message}", json={"content": "final version"}, headers=owner.auth).status_code == 200
    assert _found(client, owner, **_in_guild(guild, content="first")) == []
    assert _found(client, owner, **_in_guild(guild, content="final")) == [message]
    # Pinning changes the row but not its text: the message stays findable.
    assert client.put(f"/v1/channels/{channel}/pins/{message}", headers=owner.auth).status_code == 204
    assert _found(client, owner, **_in_guild(guild, content="final")) == [message]

    assert client.delete(f"{url}/{message}", headers=owner.auth).status_code == 204
    assert _found(client, owner, **_in_guild(guild, content="final")) == []
    assert client.post(f"{url}/bulk-delete", json={"messages": others}, headers=owner.auth).status_code == 204
    assert _found(client, owner, **_in_guild(guild, content="draft")) == []


def test_someone_in_many_large_guilds_still_gets_their_readable_channels(app, register):
    # 80 guilds x 500 channels: more channels than SQLite takes parameters in one statement (32,766),
    # so the readable set must be selected by conditions, never by a list of ids.
    from sqlalchemy import insert

    from service.access import guild_channels_with
    from service.models import Channel, Guild, Member, Role
    from service.permissions import Permission

    reader = register()
    rt, user_id = app.runtime, int(reader.user_id)
    session = rt.db.session
    try:
        for _ in range(80):
            guild_id = rt.new_id()
            session.execute(insert(Guild).values(id=guild_id, name="wide", owner_id=user_id))
            session.execute(insert(Role).values(id=guild_id, guild_id=guild_id, name="@everyone", position=0,
                                                permissions=int(Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY)))
            session.execute(insert(Member).values(guild_id=guild_id, user_id=user_id))
            session.execute(insert(Channel.__table__), [
                {"id": rt.new_id(), "guild_id": guild_id, "type": 0, "name": f"c{n}", "position": n} for n in range(500)])
        session.commit()
        readable = guild_channels_with(session, user_id, int(Permission.VIEW_CHANNEL), Channel.type == 0)
    finally:
        rt.db.remove()
    assert len(readable) == 40_000


def test_nul_in_a_search_is_refused_before_the_database(client, register):
    # PostgreSQL text cannot hold NUL; the body validator refuses it for every request, search included.
    searcher = register()
    response = client.post("/v1/search/messages", content=b'{"content": "a\\u0000b", "scope": "all_guilds"}',
                           headers={**searcher.auth, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "BAD_REQUEST"
