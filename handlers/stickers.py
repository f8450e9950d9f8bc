"""Handlers for openapi/stickers.yaml."""

from service import expressions
from service.auth import Identity
from service.runtime import audit_reason, current


def list_guild_stickers(guild_id, token_info):
    return expressions.list_stickers(current().db.session, Identity.from_token_info(token_info), guild_id), 200


def create_guild_sticker(guild_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return expressions.create_sticker(rt, rt.db.session, identity, guild_id, body, audit_reason()), 200


def bulk_create_guild_stickers(guild_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return expressions.bulk_create_stickers(rt, rt.db.session, identity, guild_id, body, audit_reason()), 200


def clone_guild_sticker(guild_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return expressions.clone_sticker(rt, rt.db.session, identity, guild_id, body, audit_reason()), 200


def update_guild_sticker(guild_id, sticker_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return expressions.update_sticker(rt, rt.db.session, identity, guild_id, sticker_id, body, audit_reason()), 200


def delete_guild_sticker(guild_id, sticker_id, token_info, purge=None):
    rt = current()
    expressions.delete_sticker(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, sticker_id, audit_reason())
    return None, 204


def get_sticker_metadata(sticker_id, token_info):
    return expressions.sticker_metadata(current().db.session, sticker_id), 200
