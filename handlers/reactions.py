"""Handlers for openapi/reactions.yaml."""

from service import reactions
from service.auth import Identity
from service.runtime import current


def add_reaction(channel_id, message_id, emoji, token_info, session_id=None):
    identity = Identity.from_token_info(token_info)
    reactions.add(current().db.session, identity, channel_id, message_id, emoji, session_id)
    return None, 204


def remove_own_reaction(channel_id, message_id, emoji, token_info, session_id=None):
    identity = Identity.from_token_info(token_info)
    reactions.remove_own(current().db.session, identity, channel_id, message_id, emoji, session_id)
    return None, 204


def remove_reaction(channel_id, message_id, emoji, target_id, token_info, session_id=None):
    identity = Identity.from_token_info(token_info)
    reactions.remove_user(current().db.session, identity, channel_id, message_id, emoji, target_id, session_id)
    return None, 204


def list_reaction_users(channel_id, message_id, emoji, token_info, limit=reactions.DEFAULT_USERS_LIMIT, after=None):
    identity = Identity.from_token_info(token_info)
    return reactions.list_users(current().db.session, identity, channel_id, message_id, emoji, limit=limit,
                                after=after), 200


def list_reaction_users_v2(channel_id, message_id, emoji, token_info, limit=reactions.DEFAULT_USERS_LIMIT, after=None):
    identity = Identity.from_token_info(token_info)
    return reactions.list_users_page(current().db.session, identity, channel_id, message_id, emoji, limit=limit,
                                     after=after), 200


def remove_all_reactions_for_emoji(channel_id, message_id, emoji, token_info):
    reactions.remove_emoji(current().db.session, Identity.from_token_info(token_info), channel_id, message_id, emoji)
    return None, 204


def remove_all_reactions(channel_id, message_id, token_info):
    reactions.remove_all(current().db.session, Identity.from_token_info(token_info), channel_id, message_id)
    return None, 204
