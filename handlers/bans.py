"""Handlers for openapi/bans.yaml."""

from service import bans
from service.auth import Identity
from service.runtime import audit_reason, current


def list_guild_bans(guild_id, token_info, limit=1000, before=None, after=None):
    identity = Identity.from_token_info(token_info)
    return bans.list_bans(current().db.session, identity, guild_id, limit=limit, before=before, after=after), 200


def ban_guild_member(guild_id, user_id, token_info, body=None):
    rt = current()
    identity = Identity.from_token_info(token_info)
    bans.ban(rt, rt.db.session, identity, guild_id, user_id, body, audit_reason())
    return None, 204


def unban_guild_member(guild_id, user_id, token_info):
    rt = current()
    bans.unban(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, user_id, audit_reason())
    return None, 204
