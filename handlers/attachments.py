"""Handlers for openapi/attachments.yaml."""

import time

import flask

from service import attachments, messages
from service.auth import Identity
from service.runtime import current

MEDIA_MAX_AGE = 3600  # seconds browsers and proxies may reuse a file: a deleted one may linger that long
# Nothing served here is a page: no script runs, even if a browser is sent to the file itself.
MEDIA_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}


def delete_message_attachment(channel_id, message_id, attachment_id, token_info):
    rt = current()
    messages.delete_attachment(rt, rt.db.session, Identity.from_token_info(token_info), channel_id, message_id,
                               attachment_id)
    return None, 204


def get_attachment(channel_id, attachment_id, filename, expires, signature):
    rt = current()
    attachment, stream = attachments.open_stored(rt, rt.db.session, channel_id, attachment_id, filename, expires,
                                                 signature)
    response = flask.send_file(stream, mimetype=attachment.content_type, download_name=attachment.filename,
                               as_attachment=not attachments.shows_inline(attachment.content_type),
                               conditional=False, etag=False,
                               max_age=min(MEDIA_MAX_AGE, max(0, expires - int(time.time()))))  # never past the URL's end
    response.content_type = attachment.content_type  # as stored: send_file would add a second charset to text
    response.headers.update(MEDIA_HEADERS)
    response.content_length = attachment.size
    response.set_etag(str(attachment.id))  # the bytes of an attachment never change
    return response.make_conditional(flask.request, accept_ranges=True, complete_length=attachment.size)
