"""Handlers for openapi/test_harness.yaml (mounted only in development and test modes)."""

import flask

from service import harness, harness_messages
from service.runtime import current


def _checked():
    rt = current()
    harness.check_access(rt.settings, flask.request.headers.get("X-Test-Token"))
    return rt.db.session


def set_user_security_flags(user_id, body):
    return harness.set_security_flags(_checked(), user_id, body), 200


def list_test_emails(recipient=None):
    return harness.list_emails(_checked(), recipient), 200


def clear_test_emails():
    harness.clear_emails(_checked())
    return None, 204


def seed_test_messages(body):
    return harness_messages.seed(_checked(), body), 200


def clear_test_channel_messages(channel_id):
    return harness_messages.clear(_checked(), channel_id), 200
