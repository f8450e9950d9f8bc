"""Handlers for openapi/messages.yaml."""

import flask

from service import messages
from service.attachments import Upload
from service.auth import Identity
from service.runtime import audit_reason, current
from service.validation import validated_form_json


def list_messages(channel_id, token_info, limit=50, before=None, after=None, around=None):
    identity = Identity.from_token_info(token_info)
    return messages.list_messages(current().db.session, identity, channel_id, limit=limit, before=before, after=after,
                                  around=around), 200


def send_message(channel_id, token_info):
    # The body is read here rather than taken as a `body` argument: Connexion would coerce the form's
    # payload_json against its schema and fails on fields that are a oneOf. Either form is the one
    # the validator checked against MessageCreate.
    rt = current()
    uploads = ()
    if flask.request.mimetype == "multipart/form-data":
        # payload_json is the JSON form's body; the files ride beside it.
        body = validated_form_json(flask.request.environ).get("payload_json") or {}
        uploads = [Upload(field, file.filename or "", file.stream) for field, file in flask.request.files.items(multi=True)]
    else:
        body = flask.request.get_json()
    return messages.send(rt, rt.db.session, Identity.from_token_info(token_info), channel_id, body, uploads), 200


def get_message(channel_id, message_id, token_info):
    return messages.get(current().db.session, Identity.from_token_info(token_info), channel_id, message_id), 200


def edit_message(channel_id, message_id, body, token_info):
    identity = Identity.from_token_info(token_info)
    return messages.edit(current().db.session, identity, channel_id, message_id, body), 200


def delete_message(channel_id, message_id, token_info):
    rt = current()
    messages.remove(rt, rt.db.session, Identity.from_token_info(token_info), channel_id, message_id, audit_reason())
    return None, 204


def bulk_delete_messages(channel_id, body, token_info):
    rt = current()
    messages.bulk_delete(rt, rt.db.session, Identity.from_token_info(token_info), channel_id, body, audit_reason())
    return None, 204


def indicate_typing(channel_id, token_info):
    messages.typing(current().db.session, Identity.from_token_info(token_info), channel_id)
    return None, 204


def get_channel_slowmode_state(channel_id, token_info):
    return messages.slowmode_state(current().db.session, Identity.from_token_info(token_info), channel_id), 200
