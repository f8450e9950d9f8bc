"""Handlers for openapi/channels.yaml."""

from service import channels
from service.auth import Identity
from service.runtime import audit_reason, current


def list_guild_channels(guild_id, token_info):
    return channels.list_channels(current().db.session, Identity.from_token_info(token_info), guild_id), 200


def create_guild_channel(guild_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return channels.create(rt, rt.db.session, identity, guild_id, body, audit_reason()), 200


def update_guild_channel_positions(guild_id, body, token_info):
    rt = current()
    channels.reorder(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, body, audit_reason())
    return None, 204


def get_channel(channel_id, token_info):
    return channels.get(current().db.session, Identity.from_token_info(token_info), channel_id), 200


def update_channel(channel_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    return channels.update_channel(rt, rt.db.session, identity, channel_id, body, audit_reason()), 200


def delete_channel(channel_id, token_info):
    rt = current()
    channels.delete_channel(rt, rt.db.session, Identity.from_token_info(token_info), channel_id, audit_reason())
    return None, 204


def set_channel_permission_overwrite(channel_id, overwrite_id, body, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    channels.set_overwrite(rt, rt.db.session, identity, channel_id, overwrite_id, body, audit_reason())
    return None, 204


def delete_channel_permission_overwrite(channel_id, overwrite_id, token_info):
    rt = current()
    identity = Identity.from_token_info(token_info)
    channels.delete_overwrite(rt, rt.db.session, identity, channel_id, overwrite_id, audit_reason())
    return None, 204
