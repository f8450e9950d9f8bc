"""Handlers for openapi/oauth2.yaml."""

from service import applications
from service.auth import Identity
from service.runtime import current


def create_oauth_application(body, token_info):
    rt = current()
    return applications.create(rt, rt.db.session, Identity.from_token_info(token_info), body), 200


def get_oauth_applications_me(token_info):
    return applications.list_mine(current().db.session, Identity.from_token_info(token_info)), 200


def get_oauth_application(id, token_info):
    return applications.get(current().db.session, Identity.from_token_info(token_info), id), 200


def update_oauth_application(id, body, token_info):
    return applications.update(current().db.session, Identity.from_token_info(token_info), id, body), 200


def delete_oauth_application(id, token_info):
    rt = current()
    applications.remove(rt, rt.db.session, Identity.from_token_info(token_info), id)
    return None, 204


def reset_bot_token(id, body, token_info):
    rt = current()
    return applications.reset_bot_token(rt, rt.db.session, Identity.from_token_info(token_info), id, body), 200


def provide_oauth2_consent(body, token_info):
    rt = current()
    return applications.consent(rt, rt.db.session, Identity.from_token_info(token_info), body), 200
