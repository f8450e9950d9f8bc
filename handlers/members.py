"""Handlers for openapi/members.yaml."""

from service import members
from service.auth import Identity
from service.runtime import audit_reason, current


def list_guild_members(guild_id, token_info, limit=1, after=None):
    return members.list_members(current().db.session, Identity.from_token_info(token_info), guild_id, limit, after), 200


def search_guild_members(guild_id, body, token_info):
    return members.search(current().db.session, Identity.from_token_info(token_info), guild_id, body), 200


def get_current_guild_member(guild_id, token_info):
    return members.get(current().db.session, Identity.from_token_info(token_info), guild_id, "@me"), 200


def update_current_guild_member(guild_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return members.update_member(rt, rt.db.session, identity, guild_id, "@me", body, audit_reason()), 200


def get_guild_member(guild_id, user_id, token_info):
    return members.get(current().db.session, Identity.from_token_info(token_info), guild_id, user_id), 200


def update_guild_member(guild_id, user_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    reason = audit_reason() or body.get("timeout_reason")
    return members.update_member(rt, rt.db.session, identity, guild_id, user_id, body, reason), 200


def remove_guild_member(guild_id, user_id, token_info):
    rt = current()
    members.kick(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, user_id, audit_reason())
    return None, 204


def add_guild_member_role(guild_id, user_id, role_id, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    members.change_role(rt, rt.db.session, identity, guild_id, user_id, role_id, add_role=True, reason=audit_reason())
    return None, 204


def remove_guild_member_role(guild_id, user_id, role_id, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    members.change_role(rt, rt.db.session, identity, guild_id, user_id, role_id, add_role=False,
                        reason=audit_reason())
    return None, 204
