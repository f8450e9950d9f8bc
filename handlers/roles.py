"""Handlers for openapi/roles.yaml."""

from service import roles
from service.auth import Identity
from service.runtime import audit_reason, current


def list_guild_roles(guild_id, token_info):
    return roles.list_roles(current().db.session, Identity.from_token_info(token_info), guild_id), 200


def create_guild_role(guild_id, body, token_info):
    rt = current()
    return roles.create(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, body, audit_reason()), 200


def update_guild_role_positions(guild_id, body, token_info):
    rt = current()
    roles.reorder(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, body, audit_reason())
    return None, 204


def update_role_hoist_positions(guild_id, body, token_info):
    rt = current()
    roles.set_hoist_positions(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, body, audit_reason())
    return None, 204


def reset_role_hoist_positions(guild_id, token_info):
    rt = current()
    roles.set_hoist_positions(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, None, audit_reason())
    return None, 204


def update_guild_role(guild_id, role_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return roles.update_role(rt, rt.db.session, identity, guild_id, role_id, body, audit_reason()), 200


def delete_guild_role(guild_id, role_id, token_info):
    rt = current()
    roles.delete(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, role_id, audit_reason())
    return None, 204
