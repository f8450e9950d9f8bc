"""Message search (POST /search/messages): full text and filters over what the caller may read.

A search only ever looks inside the channels whose history the caller may read right now: the
guild text channels where their permissions (``GuildAccess``, the arithmetic behind every
channel check) hold VIEW_CHANNEL and READ_MESSAGE_HISTORY, and the DMs and group DMs they are
in. The scope picks from that set and the channel filters narrow it; a set that ends up empty
answers no results rather than an error, so a search reveals nothing about channels the caller
cannot see. Every other filter is a condition on the messages of that set, so counting and
paging stay in the database.

Full text uses the database's own index (migration 0005): FTS5 on SQLite, a GIN index on
``to_tsvector('simple', content)`` on PostgreSQL. Both match whole words, case-insensitively and
without stemming: "cat" finds "the cat sat", but neither "concatenate" nor "cats".
"""

from __future__ import annotations

import re
from functools import reduce

from sqlalchemy import ColumnElement, bindparam, column, exists, false, func, literal_column, not_, or_, select, table

from service import dms, messages
from service.access import guild_channels_with
from service.auth import Identity
from service.channels import TEXT
from service.channels import dump as dump_guild_channel
from service.db import escape_like
from service.errors import field_error
from service.models import (
    Attachment,
    Channel,
    ChannelRecipient,
    Message,
    MessageMention,
    User,
)
from service.permissions import Permission
from service.users import MAX_SNOWFLAKE, cursor

HITS_PER_PAGE = 25
MAX_COUNTED_RESULTS = 10_000  # `total` stops counting here
READ_HISTORY = Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY
GUILD_SCOPES = {"all_guilds", "all", "open_dms_and_all_guilds"}
# This server keeps no record of DMs someone has closed, so "open" and "all" DMs are the same set.
PRIVATE_SCOPES = {"open_dms", "all_dms", "all", "open_dms_and_all_guilds"}
WORD = re.compile(r"[^\W_]+")  # letters and digits: what both full-text tokenizers keep as words
FTS5 = table("messages_fts", column("rowid"), column("messages_fts"), column("rank"))
TS_CONFIG = literal_column("'simple'::regconfig")  # spelled as in the index, or PostgreSQL will not use it
URL_HOST_ENDS = ("/", ":", "?", "#", " ", "\n", ")", ">")  # what may follow the host in a typed link
CURSOR_POSITION = re.compile(r"[0-9]{1,20}")
MEDIA_TYPES = {"image": "image/%", "video": "video/%", "sound": "audio/%"}


# --- What the caller may read ---------------------------------------------------------------


def in_channels(channel_column, channel_ids) -> ColumnElement[bool]:
    """``channel_column IN (...)`` with the ids written into the SQL: someone in many large guilds
    can read more channels than a statement may carry parameters (32,766 on SQLite)."""
    return channel_column.in_(bindparam("readable_channel_ids", sorted(channel_ids), expanding=True,
                                        literal_execute=True))


def readable_guild_channels(session, user_id: int, guild_id: int | None = None) -> dict[int, Channel]:
    """The guild text channels whose history ``user_id`` may read (of one guild, or of all theirs)."""
    conditions = [Channel.type == TEXT] + ([Channel.guild_id == guild_id] if guild_id is not None else [])
    return guild_channels_with(session, user_id, READ_HISTORY, *conditions)


def private_channels(session, user_id: int) -> dict[int, Channel]:
    """The DMs and group DMs ``user_id`` is in: every recipient reads their whole history."""
    return {channel.id: channel for channel in session.scalars(
        select(Channel).join(ChannelRecipient, ChannelRecipient.channel_id == Channel.id)
        .where(ChannelRecipient.user_id == user_id, Channel.guild_id.is_(None)))}


# --- Reading the request --------------------------------------------------------------------


def _ids(values) -> set[int]:
    """Snowflakes from a filter list; ids beyond 64 bits cannot exist, so they match nothing."""
    return {int(v) for v in values if 0 <= int(v) <= MAX_SNOWFLAKE}


def _words(text: str, path: str) -> list[str]:
    words = WORD.findall(text)
    if not words:
        raise field_error(path, "BASE_TYPE_INVALID", "Must contain at least one letter or digit")
    return words


def _if_readable(session, user_id: int, channel_id: int) -> dict[int, Channel]:
    """``{channel_id: channel}`` when ``user_id`` may read that channel's history, else ``{}``."""
    channel = session.get(Channel, channel_id) if channel_id <= MAX_SNOWFLAKE else None
    if channel is None:
        return {}
    readable = private_channels(session, user_id) if channel.guild_id is None \
        else readable_guild_channels(session, user_id, channel.guild_id)
    return {channel.id: channel} if channel.id in readable else {}


def _searched_channels(session, user_id: int, body: dict) -> dict[int, Channel]:
    scope = body.get("scope") or "current"
    named = _ids(body.get("channel_id") or []) | _ids(body.get("channel_ids") or [])
    if scope == "current":
        if body.get("context_guild_id") is not None:
            guild_id = int(body["context_guild_id"])
            channels = readable_guild_channels(session, user_id, guild_id) if guild_id <= MAX_SNOWFLAKE else {}
        elif body.get("context_channel_id") is not None:
            channels = _if_readable(session, user_id, int(body["context_channel_id"]))
            named = named or set(channels)  # the channel searched in counts as named, as by channel_id
        else:
            raise field_error("context", "BASE_TYPE_REQUIRED",
                              "Send context_guild_id or context_channel_id, or a scope other than current")
    else:
        channels = readable_guild_channels(session, user_id) if scope in GUILD_SCOPES else {}
        if scope in PRIVATE_SCOPES:
            channels.update(private_channels(session, user_id))
    if body.get("channel_id") or body.get("channel_ids"):
        channels = {cid: c for cid, c in channels.items() if cid in named}
    excluded = _ids(body.get("exclude_channel_id") or [])
    # NSFW channels take part when asked for, or when named: searching inside one must find something.
    return {cid: c for cid, c in channels.items()
            if cid not in excluded and (body.get("include_nsfw") or not c.nsfw or cid in named)}


# --- Conditions -----------------------------------------------------------------------------


def _attachment(*conditions) -> ColumnElement[bool]:
    return exists().where(Attachment.message_id == Message.id, *conditions)


def _has(kind: str) -> ColumnElement[bool]:
    if kind in MEDIA_TYPES:
        return _attachment(Attachment.content_type.like(MEDIA_TYPES[kind]))
    if kind == "file":
        return _attachment()
    if kind == "sticker":
        return func.json_array_length(Message.sticker_ids) > 0
    if kind == "embed":
        return func.json_array_length(Message.embeds) > 0
    if kind == "link":
        return or_(Message.content.ilike("%http://%"), Message.content.ilike("%https://%"))
    return false()  # "poll" and "snapshot": this server has neither polls nor forwarded messages




def _links_to(hostname: str) -> ColumnElement[bool]:
    """The content holds a typed link to exactly this host (``https://host/...``, not ``hostile.com``)."""
    start = f"%://{escape_like(hostname)}"
    return or_(Message.content.ilike(start, escape="\\"),
               *(Message.content.ilike(f"{start}{end}%", escape="\\") for end in URL_HOST_ENDS))


def _with_extension(extension: str) -> ColumnElement[bool]:
    return _attachment(func.lower(Attachment.filename).like(f"%.{escape_like(extension.lstrip('.').lower())}",
                                                               escape="\\"))


def _mentions(target_id: int) -> ColumnElement[bool]:
    return exists().where(MessageMention.message_id == Message.id, MessageMention.target_id == target_id)


def _any(parts: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(false(), *parts)


def _authored_by_bot() -> ColumnElement[bool]:
    return exists().where(User.id == Message.author_id, User.bot.is_(True))


def _author_type(kind: str) -> ColumnElement[bool]:
    if kind == "webhook":  # nothing here is sent by a webhook
        return false()
    return _authored_by_bot() if kind == "bot" else not_(_authored_by_bot())


def _filters(body: dict) -> list[ColumnElement[bool]]:
    """Every condition besides full text and the channel set, as the reference defines them: an
    ``x`` list matches a message with any of its values (``has`` and ``mentions``: all of
    them), its ``exclude_x`` list one with none of them."""
    conditions = []
    if body.get("max_id") is not None:
        conditions.append(Message.id < cursor(body["max_id"]))
    if body.get("min_id") is not None:
        conditions.append(Message.id > cursor(body["min_id"]))
    if body.get("author_id"):
        conditions.append(Message.author_id.in_(sorted(_ids(body["author_id"]))))
    if body.get("exclude_author_id"):
        conditions.append(Message.author_id.not_in(sorted(_ids(body["exclude_author_id"]))))
    if body.get("author_type"):
        conditions.append(_any([_author_type(kind) for kind in set(body["author_type"])]))
    if body.get("exclude_author_type"):
        conditions.append(not_(_any([_author_type(kind) for kind in set(body["exclude_author_type"])])))
    if body.get("mentions"):
        ids = [int(v) for v in body["mentions"]]
        conditions.extend(_mentions(i) if i <= MAX_SNOWFLAKE else false() for i in ids)
    if body.get("exclude_mentions"):
        conditions.append(not_(exists().where(MessageMention.message_id == Message.id,
                                              MessageMention.target_id.in_(sorted(_ids(body["exclude_mentions"]))))))
    if body.get("mention_everyone") is not None:
        conditions.append(Message.mention_everyone.is_(bool(body["mention_everyone"])))
    if body.get("pinned") is not None:
        conditions.append(Message.pinned_at.is_not(None) if body["pinned"] else Message.pinned_at.is_(None))
    conditions.extend(_has(kind) for kind in set(body.get("has") or []))
    if body.get("exclude_has"):
        conditions.append(not_(_any([_has(kind) for kind in set(body["exclude_has"])])))
    # Embeds here are the rich embeds clients send: none has a preview type or a provider, so
    # these match no message and their exclude_ lists exclude none.
    if body.get("embed_type") or body.get("embed_provider"):
        conditions.append(false())
    if body.get("link_hostname"):
        conditions.append(_any([_links_to(host) for host in body["link_hostname"]]))
    if body.get("exclude_link_hostname"):
        conditions.append(not_(_any([_links_to(host) for host in body["exclude_link_hostname"]])))
    if body.get("attachment_filename"):
        conditions.append(_attachment(Attachment.filename.in_(body["attachment_filename"])))
    if body.get("exclude_attachment_filename"):
        excluded = body["exclude_attachment_filename"]
        conditions.append(not_(_attachment(Attachment.filename.in_(excluded))))
    if body.get("attachment_extension"):
        conditions.append(_any([_with_extension(ext) for ext in body["attachment_extension"]]))
    if body.get("exclude_attachment_extension"):
        conditions.append(not_(_any([_with_extension(ext) for ext in body["exclude_attachment_extension"]])))
    return conditions


def _full_text(session, statement, body: dict):
    """``statement`` narrowed to the words asked for, and a relevance score (higher is better),
    or None when the search has no text. ``content``: all its words; each of ``exact_phrases``:
    its words in a row; ``contents``: all the words of at least one of them."""
    content, phrases, alternatives = body.get("content"), body.get("exact_phrases") or [], body.get("contents") or []
    words = _words(content, "content") if content is not None else None
    phrase_words = [_words(p, f"exact_phrases.{i}") for i, p in enumerate(phrases)]
    alternative_words = [_words(c, f"contents.{i}") for i, c in enumerate(alternatives)]
    if words is None and not phrase_words and not alternative_words:
        return statement, None
    if session.get_bind().dialect.name == "postgresql":
        parts = [func.plainto_tsquery(TS_CONFIG, content)] if words else []
        parts += [func.phraseto_tsquery(TS_CONFIG, p) for p in phrases]
        if alternatives:
            parts.append(reduce(lambda a, b: a.op("||")(b),
                                [func.plainto_tsquery(TS_CONFIG, c) for c in alternatives]))
        query = reduce(lambda a, b: a.op("&&")(b), parts)
        document = func.to_tsvector(TS_CONFIG, Message.content)
        return statement.where(document.op("@@")(query)), func.ts_rank(document, query)
    # FTS5: each word a quoted string, so nothing a person types is read as query syntax.
    parts = [" ".join(f'"{w}"' for w in words)] if words else []
    parts += ['"' + " ".join(p) + '"' for p in phrase_words]
    if alternative_words:
        parts.append(" OR ".join("(" + " ".join(f'"{w}"' for w in c) + ")" for c in alternative_words))
    query = " AND ".join(f"({p})" for p in parts)
    statement = statement.join(FTS5, FTS5.c.rowid == Message.id).where(FTS5.c.messages_fts.op("MATCH")(query))
    return statement, -FTS5.c.rank  # FTS5's rank is bm25, lower for better matches


# --- The search -----------------------------------------------------------------------------


def _page_position(body: dict, sort_by: str) -> tuple[int, int | None]:
    """(rows to skip, id to continue after). A cursor is what the previous page answered: after
    a timestamp sort the last id shown, after a relevance sort how many were shown."""
    hits_per_page = body.get("hits_per_page") or HITS_PER_PAGE
    given = body.get("cursor")
    if given is None:
        return ((body.get("page") or 1) - 1) * hits_per_page, None
    if len(given) != 2 or given[0] != sort_by or not CURSOR_POSITION.fullmatch(given[1]):
        raise field_error("cursor", "BASE_TYPE_INVALID", "Send back the cursor of a search with the same sort_by")
    position = min(int(given[1]), MAX_SNOWFLAKE)
    return (0, position) if sort_by == "timestamp" else (position, None)


def _dump_channels(session, identity: Identity, shown: list[Channel]) -> list[dict]:
    """Each channel as its own endpoint shows it; a DM or group DM as the caller's DM list does."""
    private = {c["id"]: c for c in dms.list_private(session, identity)} if any(c.guild_id is None for c in shown) else {}
    return [private[str(c.id)] if c.guild_id is None else dump_guild_channel(session, c) for c in shown]


def search_messages(session, identity: Identity, body: dict) -> dict:
    sort_by, descending = body.get("sort_by") or "timestamp", (body.get("sort_order") or "desc") == "desc"
    hits_per_page, page = body.get("hits_per_page") or HITS_PER_PAGE, body.get("page") or 1
    offset, after_id = _page_position(body, sort_by)
    matches, relevance = _full_text(session, select(Message), body)
    channels = _searched_channels(session, identity.user_id, body)
    empty = {"messages": [], "channels": [], "total": 0, "hits_per_page": hits_per_page, "page": page}
    if not channels:
        return empty
    matches = matches.where(in_channels(Message.channel_id, channels), *_filters(body))
    # Counted up to a bound: an exact count of a broad query would read the caller's whole history.
    total = session.scalar(select(func.count()).select_from(
        matches.with_only_columns(Message.id).limit(MAX_COUNTED_RESULTS).subquery()))
    if after_id is not None:
        matches = matches.where(Message.id < after_id if descending else Message.id > after_id)
    if sort_by == "relevance" and relevance is not None:
        matches = matches.order_by(relevance.desc() if descending else relevance.asc(), Message.id.desc())
    else:
        matches = matches.order_by(Message.id.desc() if descending else Message.id.asc())
    rows = list(session.scalars(matches.offset(offset).limit(hits_per_page + 1)))
    more, rows = len(rows) > hits_per_page, rows[:hits_per_page]
    if not rows:
        return {**empty, "total": total}
    shown = list({m.channel_id: channels[m.channel_id] for m in rows}.values())
    result = {"messages": messages.dump_many(session, rows, identity.user_id),
              "channels": _dump_channels(session, identity, shown),
              "total": total, "hits_per_page": hits_per_page, "page": page}
    if more:
        result["cursor"] = [sort_by, str(rows[-1].id if sort_by == "timestamp" else offset + len(rows))]
    return result
