"""Handlers for openapi/users.yaml."""

from service import accounts, serializers, users
from service.auth import Identity
from service.runtime import current


def get_current_user(token_info):
    user = users.me(current().db.session, Identity.from_token_info(token_info))
    return serializers.user_private.dump(user), 200


def update_current_user(body, token_info):
    rt = current()
    return users.update_me(rt, rt.db.session, Identity.from_token_info(token_info), body), 200


def get_current_user_settings(token_info):
    return users.get_settings(users.me(current().db.session, Identity.from_token_info(token_info))), 200


def update_current_user_settings(body, token_info):
    return users.update_settings(current().db.session, Identity.from_token_info(token_info), body), 200


def enable_totp_mfa(body, token_info):
    rt = current()
    return users.enable_totp(rt, rt.db.session, Identity.from_token_info(token_info), body), 200


def disable_totp_mfa(body, token_info):
    rt = current()
    users.disable_totp(rt, rt.db.session, Identity.from_token_info(token_info), body)
    return None, 204


def get_backup_codes_mfa(body, token_info):
    rt = current()
    return users.backup_codes(rt, rt.db.session, Identity.from_token_info(token_info), body), 200


def check_username_tag_availability(username, discriminator):
    return {"taken": accounts.tag_taken(current().db.session, username, discriminator)}, 200


def get_user_by_id(user_id):
    return users.get_public(current().db.session, user_id), 200
