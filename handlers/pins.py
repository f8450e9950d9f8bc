"""Handlers for openapi/pins.yaml."""

from service import pins
from service.auth import Identity
from service.runtime import audit_reason, current


def pin_message(channel_id, message_id, token_info):
    rt = current()
    pins.pin(rt, rt.db.session, Identity.from_token_info(token_info), channel_id, message_id, audit_reason())
    return None, 204


def unpin_message(channel_id, message_id, token_info):
    rt = current()
    pins.unpin(rt, rt.db.session, Identity.from_token_info(token_info), channel_id, message_id, audit_reason())
    return None, 204


def list_pinned_messages(channel_id, token_info, limit=pins.DEFAULT_LIMIT, before=None):
    identity = Identity.from_token_info(token_info)
    return pins.list_pins(current().db.session, identity, channel_id, limit=limit, before=before), 200


def acknowledge_pins(channel_id, token_info):
    pins.acknowledge(current().db.session, Identity.from_token_info(token_info), channel_id)
    return None, 204
