"""Handlers for openapi/guilds.yaml."""

from service import audit, guilds, members
from service.auth import Identity
from service.runtime import audit_reason, current


def create_guild(body, token_info):
    rt = current()
    return guilds.create(rt, rt.db.session, Identity.from_token_info(token_info), body), 200


def get_guild(guild_id, token_info):
    return guilds.get(current().db.session, Identity.from_token_info(token_info), guild_id), 200


def update_guild(guild_id, body, token_info):
    rt = current()
    return guilds.update(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, body, audit_reason()), 200


def delete_guild(guild_id, body, token_info):
    rt = current()
    guilds.delete(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, body)
    return None, 204


def transfer_guild_ownership(guild_id, body, token_info):
    rt = current()
    return guilds.transfer_ownership(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, body), 200


def get_guild_vanity_url(guild_id, token_info):
    return guilds.get_vanity(current().db.session, Identity.from_token_info(token_info), guild_id), 200


def update_guild_vanity_url(guild_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return guilds.update_vanity(rt, rt.db.session, identity, guild_id, body, audit_reason()), 200


def list_guilds(token_info, before=None, after=None, limit=200, with_counts=None):
    rt = current()
    counted = (with_counts or "").lower() in ("true", "1")
    return guilds.list_mine(rt.db.session, Identity.from_token_info(token_info), before=before, after=after, limit=limit,
                            presence_store=rt.presence if counted else None), 200


def leave_guild(guild_id, token_info):
    rt = current()
    members.leave(rt, rt.db.session, Identity.from_token_info(token_info), guild_id)
    return None, 204


def list_guild_audit_logs(guild_id, token_info, limit=50, before=None, after=None, user_id=None, action_type=None):
    identity = Identity.from_token_info(token_info)
    return audit.list_entries(current().db.session, identity, guild_id, user_id=user_id, action_type=action_type,
                              before=before, after=after, limit=limit), 200
