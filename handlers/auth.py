"""Handlers for openapi/auth.yaml."""

from service import accounts
from service.auth import Identity
from service.runtime import client, current


def register_account(body):
    rt = current()
    return accounts.register(rt, rt.db.session, body, client()), 200


def login_user(body):
    rt = current()
    return accounts.login(rt, rt.db.session, body, client()), 200


def login_with_totp(body):
    rt = current()
    return accounts.login_with_totp(rt, rt.db.session, body, client()), 200


def logout_user(token_info):
    accounts.logout(current().db.session, Identity.from_token_info(token_info))
    return None, 204


def list_auth_sessions(token_info):
    return accounts.list_sessions(current().db.session, Identity.from_token_info(token_info)), 200


def logout_all_sessions(body, token_info):
    rt = current()
    accounts.logout_sessions(rt, rt.db.session, Identity.from_token_info(token_info), body)
    return None, 204


def get_sso_status():
    return {"enabled": False, "enforced": False, "display_name": None, "redirect_uri": ""}, 200


def get_username_suggestions(body):
    return {"suggestions": accounts.username_suggestions(current().db.session, body["global_name"])}, 200


def authorize_ip_address(body):
    accounts.authorize_ip(current().db.session, body["token"])
    return None, 204


def resend_ip_authorization(body):
    rt = current()
    accounts.resend_ip_authorization(rt, rt.db.session, body["ticket"])
    return None, 204


def poll_ip_authorization(ticket):
    rt = current()
    return accounts.poll_ip_authorization(rt, rt.db.session, ticket, client()), 200


