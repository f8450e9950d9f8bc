"""Handlers for openapi/read_states.yaml."""

from service import read_states
from service.auth import Identity
from service.runtime import current


def acknowledge_message(channel_id, message_id, token_info, body=None):
    identity = Identity.from_token_info(token_info)
    read_states.acknowledge_message(current().db.session, identity, channel_id, message_id, body)
    return None, 204


def clear_channel_read_state(channel_id, token_info):
    read_states.clear(current().db.session, Identity.from_token_info(token_info), channel_id)
    return None, 204


def ack_bulk_messages(body, token_info):
    read_states.acknowledge_bulk(current().db.session, Identity.from_token_info(token_info), body)
    return None, 204
