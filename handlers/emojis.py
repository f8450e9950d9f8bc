"""Handlers for openapi/emojis.yaml."""

from service import expressions
from service.auth import Identity
from service.runtime import audit_reason, current


def list_guild_emojis(guild_id, token_info):
    return expressions.list_emojis(current().db.session, Identity.from_token_info(token_info), guild_id), 200


def create_guild_emoji(guild_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return expressions.create_emoji(rt, rt.db.session, identity, guild_id, body, audit_reason()), 200


def bulk_create_guild_emojis(guild_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return expressions.bulk_create_emojis(rt, rt.db.session, identity, guild_id, body, audit_reason()), 200


def clone_guild_emoji(guild_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return expressions.clone_emoji(rt, rt.db.session, identity, guild_id, body, audit_reason()), 200


def update_guild_emoji(guild_id, emoji_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return expressions.update_emoji(rt, rt.db.session, identity, guild_id, emoji_id, body, audit_reason()), 200


def delete_guild_emoji(guild_id, emoji_id, token_info, purge=None):
    rt = current()
    expressions.delete_emoji(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, emoji_id, audit_reason())
    return None, 204


def get_emoji_metadata(emoji_id, token_info):
    return expressions.emoji_metadata(current().db.session, emoji_id), 200
