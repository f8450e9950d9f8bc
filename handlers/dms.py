"""Handlers for openapi/dms.yaml."""

from service import dms
from service.auth import Identity
from service.runtime import current


def list_private_channels(token_info):
    return dms.list_private(current().db.session, Identity.from_token_info(token_info)), 200


def create_private_channel(body, token_info):
    rt = current()
    return dms.create(rt, rt.db.session, Identity.from_token_info(token_info), body), 200


def add_group_dm_recipient(channel_id, user_id, token_info):
    dms.add_recipient(current().db.session, Identity.from_token_info(token_info), channel_id, user_id)
    return None, 204


def remove_group_dm_recipient(channel_id, user_id, token_info):
    dms.remove_recipient(current().db.session, Identity.from_token_info(token_info), channel_id, user_id)
    return None, 204
