"""Handlers for openapi/instance.yaml."""

import flask

from service import instance
from service.runtime import current


def get_well_known_fluxer():
    return instance.well_known(current().settings), 200


def get_gateway_bot(token_info):
    return instance.gateway_bot(current().settings), 200


def get_telemetry():
    return instance.telemetry(), 200


def get_health():
    instance.check_database(current().db)
    return flask.Response("OK", status=200, mimetype="text/plain")
