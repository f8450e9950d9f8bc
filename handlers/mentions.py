"""Handlers for openapi/mentions.yaml."""

from service import mentions
from service.auth import Identity
from service.runtime import current


def list_mentions_for_current_user(token_info, limit=25, roles=True, everyone=True, guilds=True, before=None):
    return mentions.list_mentions(current().db.session, Identity.from_token_info(token_info), limit=limit,
                                  roles=roles, everyone=everyone, guilds=guilds, before=before), 200


def mark_mentions_read(body, token_info):
    mentions.mark_read(current().db.session, Identity.from_token_info(token_info), body)
    return None, 204


def delete_mention(message_id, token_info):
    mentions.remove(current().db.session, Identity.from_token_info(token_info), message_id)
    return None, 204
