"""Handlers for openapi/relationships.yaml."""

from service import relationships
from service.auth import Identity
from service.runtime import current


def list_user_relationships(token_info):
    return relationships.list_relationships(current().db.session, Identity.from_token_info(token_info)), 200


def send_friend_request_by_tag(body, token_info):
    return relationships.send_request_by_tag(current().db.session, Identity.from_token_info(token_info), body), 200


def send_friend_request(user_id, token_info, body=None):
    return relationships.send_request(current().db.session, Identity.from_token_info(token_info), user_id), 200


def accept_or_update_friend_request(user_id, token_info, body=None):
    return relationships.put(current().db.session, Identity.from_token_info(token_info), user_id, body), 200


def update_relationship_nickname(user_id, body, token_info):
    return relationships.set_nickname(current().db.session, Identity.from_token_info(token_info), user_id, body), 200


def remove_relationship(user_id, token_info):
    relationships.remove(current().db.session, Identity.from_token_info(token_info), user_id)
    return None, 204


def list_current_user_notes(token_info):
    return relationships.list_notes(current().db.session, Identity.from_token_info(token_info)), 200


def get_note_on_user(target_id, token_info):
    return relationships.get_note(current().db.session, Identity.from_token_info(token_info), target_id), 200


def set_note_on_user(target_id, body, token_info):
    relationships.set_note(current().db.session, Identity.from_token_info(token_info), target_id, body)
    return None, 204
