"""Handlers for openapi/invites.yaml."""

from service import invites
from service.auth import Identity
from service.runtime import audit_reason, current


def create_channel_invite(channel_id, token_info, body=None):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return invites.create(rt, rt.db.session, identity, channel_id, body, audit_reason()), 200


def list_channel_invites(channel_id, token_info):
    return invites.list_for_channel(current().db.session, Identity.from_token_info(token_info), channel_id), 200


def list_guild_invites(guild_id, token_info):
    return invites.list_for_guild(current().db.session, Identity.from_token_info(token_info), guild_id), 200


def get_invite(invite_code):
    rt = current()
    return invites.get(rt.db.session, rt.presence, invite_code), 200


def accept_invite(invite_code, token_info):
    rt = current()
    return invites.accept(rt, rt.db.session, Identity.from_token_info(token_info), invite_code), 200


def delete_invite(invite_code, token_info):
    rt = current()
    invites.delete(rt, rt.db.session, Identity.from_token_info(token_info), invite_code, audit_reason())
    return None, 204
