"""Handlers for openapi/search.yaml."""

from service import search
from service.auth import Identity
from service.runtime import current


def search_messages(body, token_info):
    return search.search_messages(current().db.session, Identity.from_token_info(token_info), body), 200
