"""Handlers for openapi/message_bulk.yaml."""

from service import message_bulk
from service.auth import Identity
from service.runtime import current


def bulk_list_channel_messages(body, token_info):
    identity = Identity.from_token_info(token_info)
    return message_bulk.list_many(current().db.session, identity, body["requests"]), 200


def bulk_delete_my_messages_in_channel(channel_id, body, token_info):
    rt = current()
    message_bulk.delete_mine_in_channel(rt, rt.db.session, Identity.from_token_info(token_info), channel_id, body)
    return None, 204


def bulk_delete_my_messages_in_guild(guild_id, body, token_info):
    rt = current()
    message_bulk.delete_mine_in_guild(rt, rt.db.session, Identity.from_token_info(token_info), guild_id, body)
    return None, 204


def bulk_delete_my_messages(body, token_info):
    rt = current()
    message_bulk.delete_mine(rt, rt.db.session, Identity.from_token_info(token_info), body)
    return None, 204
