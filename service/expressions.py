"""Guild emojis and stickers: uploaded images checked by decoding, stored through service.storage.

Who may do what:
- any member lists a guild's emojis and stickers;
- ``CREATE_EXPRESSIONS`` or ``MANAGE_EXPRESSIONS`` uploads (create, bulk create, clone);
- the uploader changes or deletes their own with ``CREATE_EXPRESSIONS``; anyone else's
  needs ``MANAGE_EXPRESSIONS``;
- any authenticated user reads an emoji's or sticker's metadata by id.

Every change writes the audit log and publishes the guild's full list
(``GUILD_EMOJIS_UPDATE`` / ``GUILD_STICKERS_UPDATE``) in the same transaction. Image bytes
live in storage under ``emojis/<id>`` and ``stickers/<id>``; the row keeps the content type.
A file is written before its row commits (and removed again if the commit fails) and
removed only after the row's deletion commits, so a committed row always has its file.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from service import audit, events, images, serializers
from service.access import GuildAccess, guild_access, missing_permissions
from service.audit import Action
from service.auth import Identity
from service.db import lock_row
from service.errors import APIError, field_error, limit_reached, not_found
from service.images import DecodedImage
from service.models import Emoji, Guild, Member, Sticker, User
from service.permissions import Permission
from service.storage import PendingFiles, Storage, delete_after_commit
from service.users import parse_snowflake

MAX_EMOJIS = 50  # static emojis per guild
MAX_ANIMATED_EMOJIS = 50  # animated emojis per guild, counted apart from the static ones
MAX_STICKERS = 50
EMOJI_MAX_BYTES = 256 * 1024
EMOJI_MAX_DIMENSION = 512  # pixels, each side; shown at up to 128x128, stored as uploaded
STICKER_MAX_BYTES = 512 * 1024
STICKER_MAX_DIMENSION = 320
EMOJI_NAME = re.compile(r"[A-Za-z0-9_]{2,32}")
STICKER_NAME_LENGTH = (2, 30)
STICKER_DESCRIPTION_MAX = 100
STICKER_MAX_TAGS = 10
SPACE = " \t\n\r\f\v"  # trimmed from names, descriptions and tags (the spec's patterns say the same)
CLONE_EMOJI_DISABLED = "CLONE_EMOJI_DISABLED"  # guild features that keep non-members from cloning
CLONE_STICKER_DISABLED = "CLONE_STICKER_DISABLED"


def emoji_key(emoji_id: int) -> str:
    return f"emojis/{emoji_id}"


def sticker_key(sticker_id: int) -> str:
    return f"stickers/{sticker_id}"


# --- Reading ------------------------------------------------------------------------------


def _emoji_rows(session, guild_id: int) -> list[Emoji]:
    return list(session.scalars(select(Emoji).where(Emoji.guild_id == guild_id).order_by(Emoji.id)))


def _sticker_rows(session, guild_id: int) -> list[Sticker]:
    return list(session.scalars(select(Sticker).where(Sticker.guild_id == guild_id).order_by(Sticker.id)))


def list_emojis_of(session, guild_id: int) -> list[dict]:
    return [serializers.emoji.dump(e) for e in _emoji_rows(session, guild_id)]


def list_stickers_of(session, guild_id: int) -> list[dict]:
    return [serializers.sticker.dump(s) for s in _sticker_rows(session, guild_id)]


def _with_users(session, rows, schema) -> list[dict]:
    """Each row's wire shape plus ``user``, the uploader (null once their account is gone)."""
    user_ids = {row.user_id for row in rows if row.user_id is not None}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    result = []
    for row in rows:
        data = schema.dump(row)
        user = users.get(row.user_id)
        data["user"] = serializers.user_public.dump(user) if user is not None else None
        result.append(data)
    return result


def list_emojis(session, identity: Identity, guild_id: str) -> list[dict]:
    access = guild_access(session, identity, guild_id)
    return _with_users(session, _emoji_rows(session, access.guild.id), serializers.emoji)


def list_stickers(session, identity: Identity, guild_id: str) -> list[dict]:
    access = guild_access(session, identity, guild_id)
    return _with_users(session, _sticker_rows(session, access.guild.id), serializers.sticker)


def _metadata(session, model, value: str, what: str, code: str, clone_disabled: str) -> dict:
    row = session.get(model, parse_snowflake(value, what, code))
    if row is None:
        raise not_found(code, what)
    guild = session.get(Guild, row.guild_id)
    return {"id": str(row.id), "guild_id": str(row.guild_id), "name": row.name, "animated": bool(row.animated),
            "allow_cloning": clone_disabled not in (guild.features or [])}


def emoji_metadata(session, emoji_id: str) -> dict:
    return _metadata(session, Emoji, emoji_id, "emoji", "UNKNOWN_EMOJI", CLONE_EMOJI_DISABLED)


def sticker_metadata(session, sticker_id: str) -> dict:
    return _metadata(session, Sticker, sticker_id, "sticker", "UNKNOWN_STICKER", CLONE_STICKER_DISABLED)


def storage_keys_of(session, guild_id: int) -> list[str]:
    """Every stored file of the guild's emojis and stickers, e.g. to delete them with the guild."""
    emoji_ids = session.scalars(select(Emoji.id).where(Emoji.guild_id == guild_id))
    sticker_ids = session.scalars(select(Sticker.id).where(Sticker.guild_id == guild_id))
    return [emoji_key(i) for i in emoji_ids] + [sticker_key(i) for i in sticker_ids]


# --- Shared rules -------------------------------------------------------------------------


def _require_create(access: GuildAccess) -> None:
    if not (access.has(Permission.CREATE_EXPRESSIONS) or access.has(Permission.MANAGE_EXPRESSIONS)):
        raise missing_permissions(Permission.CREATE_EXPRESSIONS)


def _require_edit(access: GuildAccess, uploader_id: int | None) -> None:
    """Anyone's with MANAGE_EXPRESSIONS; one's own with CREATE_EXPRESSIONS."""
    if access.has(Permission.MANAGE_EXPRESSIONS):
        return
    if uploader_id == access.user_id and access.has(Permission.CREATE_EXPRESSIONS):
        return
    raise missing_permissions(Permission.MANAGE_EXPRESSIONS)


def _in_guild(session, access: GuildAccess, model, value: str, what: str, code: str):
    row = session.get(model, parse_snowflake(value, what, code))
    if row is None or row.guild_id != access.guild.id:
        raise not_found(code, what)
    return row


def _clone_source(session, access: GuildAccess, model, value, what: str, code: str, clone_disabled: str):
    """The row to copy: members of its guild may always clone it, others unless the guild forbids."""
    row = session.get(model, parse_snowflake(value, what, code))
    if row is None:
        raise not_found(code, what)
    guild = session.get(Guild, row.guild_id)
    is_member = session.get(Member, (row.guild_id, access.user_id)) is not None
    if not is_member and clone_disabled in (guild.features or []):
        raise APIError(403, "MISSING_PERMISSIONS", f"That {what}'s guild does not allow cloning it")
    return row


def _stored_image(storage: Storage, key: str, field: str, code: str, what: str, max_dimension: int) -> DecodedImage:
    data = storage.get(key)
    if data is None:  # the file is gone (storage lost it); nothing to copy
        raise not_found(code, what)
    return images.inspect(data, field, max_width=max_dimension, max_height=max_dimension)


def _failure(error: APIError) -> str:
    return "; ".join(e.message for e in error.errors) if error.errors else error.message


# --- Emojis -------------------------------------------------------------------------------


def _emoji_name(value, field: str) -> str:
    name = value.strip(SPACE) if isinstance(value, str) else ""
    if not EMOJI_NAME.fullmatch(name):
        raise field_error(field, "STRING_TYPE_REGEX", "An emoji name is 2-32 letters, digits or underscores")
    return name


def _emoji_image(value, field: str) -> DecodedImage:
    return images.decode(value, field, max_bytes=EMOJI_MAX_BYTES, max_width=EMOJI_MAX_DIMENSION,
                         max_height=EMOJI_MAX_DIMENSION)


def _emoji_counts(session, guild_id: int) -> dict[bool, int]:
    lock_row(session, Guild, guild_id)  # counted, then added to: no concurrent upload may slip in between
    counts = {False: 0, True: 0}
    for animated, count in session.execute(select(Emoji.animated, func.count()).where(Emoji.guild_id == guild_id)
                                           .group_by(Emoji.animated)):
        counts[bool(animated)] = count
    return counts


def _add_emoji(rt, session, access: GuildAccess, uploads: PendingFiles, counts: dict[bool, int], name: str,
               image: DecodedImage, reason: str | None) -> dict:
    if image.animated and counts[True] >= MAX_ANIMATED_EMOJIS:
        raise limit_reached("MAX_ANIMATED_EMOJIS", "animated emojis", MAX_ANIMATED_EMOJIS)
    if not image.animated and counts[False] >= MAX_EMOJIS:
        raise limit_reached("MAX_EMOJIS", "emojis", MAX_EMOJIS)
    emoji = Emoji(id=rt.new_id(), guild_id=access.guild.id, name=name, animated=image.animated,
                  content_type=image.content_type, user_id=access.user_id)
    uploads.put(emoji_key(emoji.id), image.data, image.content_type)
    session.add(emoji)
    counts[image.animated] += 1
    audit.record(rt, session, access.guild.id, access.user_id, Action.EMOJI_CREATE, emoji.id, reason=reason,
                 changes=audit.diff({}, {"name": name}))
    return serializers.emoji.dump(emoji)


def _publish_emojis(session, guild_id: int) -> None:
    session.flush()
    events.publish(session, "GUILD_EMOJIS_UPDATE", {"guild_id": str(guild_id), "emojis": list_emojis_of(session, guild_id)},
                   guild_id=guild_id)


def create_emoji(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    name = _emoji_name(body["name"], "name")
    image = _emoji_image(body["image"], "image")
    with PendingFiles(rt.storage) as uploads:
        data = _add_emoji(rt, session, access, uploads, _emoji_counts(session, access.guild.id), name, image, reason)
        _publish_emojis(session, access.guild.id)
        session.commit()
    return data


def bulk_create_emojis(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    """Each emoji succeeds or fails on its own; the failures say why, by name."""
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    counts = _emoji_counts(session, access.guild.id)
    success, failed = [], []
    with PendingFiles(rt.storage) as uploads:
        for index, item in enumerate(body["emojis"]):
            try:
                name = _emoji_name(item.get("name"), f"emojis.{index}.name")
                image = _emoji_image(item.get("image"), f"emojis.{index}.image")
                success.append(_add_emoji(rt, session, access, uploads, counts, name, image, reason))
            except APIError as error:
                failed.append({"name": str(item.get("name", "")), "error": _failure(error)})
        if success:
            _publish_emojis(session, access.guild.id)
        session.commit()
    return {"success": success, "failed": failed}


def clone_emoji(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    source = _clone_source(session, access, Emoji, body["source_emoji_id"], "emoji", "UNKNOWN_EMOJI",
                           CLONE_EMOJI_DISABLED)
    image = _stored_image(rt.storage, emoji_key(source.id), "source_emoji_id", "UNKNOWN_EMOJI", "emoji",
                          EMOJI_MAX_DIMENSION)
    with PendingFiles(rt.storage) as uploads:
        data = _add_emoji(rt, session, access, uploads, _emoji_counts(session, access.guild.id), source.name, image,
                          reason)
        _publish_emojis(session, access.guild.id)
        session.commit()
    return data


def update_emoji(rt, session, identity: Identity, guild_id: str, emoji_id: str, body: dict,
                 reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    emoji = _in_guild(session, access, Emoji, emoji_id, "emoji", "UNKNOWN_EMOJI")
    _require_edit(access, emoji.user_id)
    name = _emoji_name(body["name"], "name")
    changes = audit.diff({"name": emoji.name}, {"name": name})
    if changes:
        emoji.name = name
        audit.record(rt, session, access.guild.id, access.user_id, Action.EMOJI_UPDATE, emoji.id, reason=reason,
                     changes=changes)
        _publish_emojis(session, access.guild.id)
    session.commit()
    return serializers.emoji.dump(emoji)


def delete_emoji(rt, session, identity: Identity, guild_id: str, emoji_id: str, reason: str | None) -> None:
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    emoji = _in_guild(session, access, Emoji, emoji_id, "emoji", "UNKNOWN_EMOJI")
    _require_edit(access, emoji.user_id)
    audit.record(rt, session, access.guild.id, access.user_id, Action.EMOJI_DELETE, emoji.id, reason=reason,
                 changes=audit.diff({"name": emoji.name}, {}))
    session.delete(emoji)
    _publish_emojis(session, access.guild.id)
    delete_after_commit(session, emoji_key(emoji.id))
    session.commit()


# --- Stickers -----------------------------------------------------------------------------


def _sticker_name(value, field: str) -> str:
    name = value.strip(SPACE) if isinstance(value, str) else ""
    low, high = STICKER_NAME_LENGTH
    if not low <= len(name) <= high:
        raise field_error(field, "BASE_TYPE_BAD_LENGTH", f"A sticker name is {low}-{high} characters")
    return name


def _sticker_description(value, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value.strip(SPACE)) > STICKER_DESCRIPTION_MAX:
        raise field_error(field, "BASE_TYPE_BAD_LENGTH", f"A description is at most {STICKER_DESCRIPTION_MAX} characters")
    return value.strip(SPACE)


def _sticker_tags(value, field: str) -> list[str]:
    if not isinstance(value, list) or len(value) > STICKER_MAX_TAGS:
        raise field_error(field, "BASE_TYPE_BAD_LENGTH", f"At most {STICKER_MAX_TAGS} tags")
    tags: list[str] = []
    for tag in value:
        text = tag.strip(SPACE) if isinstance(tag, str) else ""
        if text and text not in tags:  # blank and repeated tags are dropped
            tags.append(text)
    return tags


def _sticker_image(value, field: str) -> DecodedImage:
    return images.decode(value, field, max_bytes=STICKER_MAX_BYTES, max_width=STICKER_MAX_DIMENSION,
                         max_height=STICKER_MAX_DIMENSION)


def _sticker_fields(sticker: Sticker) -> dict:
    return {"name": sticker.name, "description": sticker.description, "tags": list(sticker.tags or [])}


def _add_sticker(rt, session, access: GuildAccess, uploads: PendingFiles, count: list[int], fields: dict,
                 image: DecodedImage, reason: str | None) -> dict:
    if count[0] >= MAX_STICKERS:
        raise limit_reached("MAX_STICKERS", "stickers", MAX_STICKERS)
    sticker = Sticker(id=rt.new_id(), guild_id=access.guild.id, name=fields["name"], description=fields["description"],
                      tags=fields["tags"], animated=image.animated, content_type=image.content_type,
                      user_id=access.user_id)
    uploads.put(sticker_key(sticker.id), image.data, image.content_type)
    session.add(sticker)
    count[0] += 1
    audit.record(rt, session, access.guild.id, access.user_id, Action.STICKER_CREATE, sticker.id, reason=reason,
                 changes=audit.diff({}, fields))
    return serializers.sticker.dump(sticker)


def _sticker_count(session, guild_id: int) -> list[int]:
    lock_row(session, Guild, guild_id)
    return [session.scalar(select(func.count()).select_from(Sticker).where(Sticker.guild_id == guild_id))]


def _publish_stickers(session, guild_id: int) -> None:
    session.flush()
    events.publish(session, "GUILD_STICKERS_UPDATE",
                   {"guild_id": str(guild_id), "stickers": list_stickers_of(session, guild_id)}, guild_id=guild_id)


def _new_sticker_fields(item: dict, prefix: str) -> dict:
    return {"name": _sticker_name(item.get("name"), f"{prefix}name"),
            "description": _sticker_description(item.get("description"), f"{prefix}description"),
            "tags": _sticker_tags(item.get("tags", []), f"{prefix}tags")}


def create_sticker(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    fields = _new_sticker_fields(body, "")
    image = _sticker_image(body["image"], "image")
    with PendingFiles(rt.storage) as uploads:
        data = _add_sticker(rt, session, access, uploads, _sticker_count(session, access.guild.id), fields, image,
                            reason)
        _publish_stickers(session, access.guild.id)
        session.commit()
    return data


def bulk_create_stickers(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    count = _sticker_count(session, access.guild.id)
    success, failed = [], []
    with PendingFiles(rt.storage) as uploads:
        for index, item in enumerate(body["stickers"]):
            try:
                fields = _new_sticker_fields(item, f"stickers.{index}.")
                image = _sticker_image(item.get("image"), f"stickers.{index}.image")
                success.append(_add_sticker(rt, session, access, uploads, count, fields, image, reason))
            except APIError as error:
                failed.append({"name": str(item.get("name", "")), "error": _failure(error)})
        if success:
            _publish_stickers(session, access.guild.id)
        session.commit()
    return {"success": success, "failed": failed}


def clone_sticker(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    source = _clone_source(session, access, Sticker, body["source_sticker_id"], "sticker", "UNKNOWN_STICKER",
                           CLONE_STICKER_DISABLED)
    image = _stored_image(rt.storage, sticker_key(source.id), "source_sticker_id", "UNKNOWN_STICKER", "sticker",
                          STICKER_MAX_DIMENSION)
    with PendingFiles(rt.storage) as uploads:
        data = _add_sticker(rt, session, access, uploads, _sticker_count(session, access.guild.id),
                            _sticker_fields(source), image, reason)
        _publish_stickers(session, access.guild.id)
        session.commit()
    return data


def update_sticker(rt, session, identity: Identity, guild_id: str, sticker_id: str, body: dict,
                   reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    sticker = _in_guild(session, access, Sticker, sticker_id, "sticker", "UNKNOWN_STICKER")
    _require_edit(access, sticker.user_id)
    before = _sticker_fields(sticker)
    after = dict(before, name=_sticker_name(body["name"], "name"))
    if "description" in body:
        after["description"] = _sticker_description(body["description"], "description")
    if "tags" in body:
        after["tags"] = _sticker_tags(body["tags"], "tags")
    changes = audit.diff(before, after)
    if changes:
        sticker.name, sticker.description, sticker.tags = after["name"], after["description"], after["tags"]
        audit.record(rt, session, access.guild.id, access.user_id, Action.STICKER_UPDATE, sticker.id, reason=reason,
                     changes=changes)
        _publish_stickers(session, access.guild.id)
    session.commit()
    return serializers.sticker.dump(sticker)


def delete_sticker(rt, session, identity: Identity, guild_id: str, sticker_id: str, reason: str | None) -> None:
    access = guild_access(session, identity, guild_id)
    _require_create(access)
    sticker = _in_guild(session, access, Sticker, sticker_id, "sticker", "UNKNOWN_STICKER")
    _require_edit(access, sticker.user_id)
    audit.record(rt, session, access.guild.id, access.user_id, Action.STICKER_DELETE, sticker.id, reason=reason,
                 changes=audit.diff(_sticker_fields(sticker), {}))
    session.delete(sticker)
    _publish_stickers(session, access.guild.id)
    delete_after_commit(session, sticker_key(sticker.id))
    session.commit()
