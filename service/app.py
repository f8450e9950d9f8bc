"""Builds the ASGI application: Connexion (FlaskApp) routing and validating the bundled spec.

Middleware order, outermost first:
    GatewayServer (WebSocket connections to /gateway; everything else passes on)
    EdgeMiddleware (request id, /v1 alias, size cap, access log, last-resort 500)
    CORS -> RouteResolver -> RateLimitMiddleware -> MethodGuard
    Connexion: exceptions -> swagger/spec -> routing -> security -> validation -> Flask
"""

from __future__ import annotations

import json

import flask
from connexion import FlaskApp
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from sqlalchemy import insert

from service import attachments, errors, events, logs, spec, storage
from service.auth import SCOPE_KEY
from service.config import Settings, load_settings
from service.crypto import PasswordHashing
from service.db import Database
from service.gateway import GatewayServer
from service.mail import Mailer
from service.middleware import API_PREFIX, EdgeMiddleware, FluxerCORSMiddleware, request_id_var
from service.models import IdNode
from service.presence import MemoryPresence, RedisPresence
from service.ratelimit import RateLimitMiddleware
from service.routes import MethodGuard, RouteResolver, RouteTable
from service.runtime import EXTENSION_KEY, Runtime
from service.snowflake import MAX_NODE, SnowflakeGenerator
from service.storage import LocalStorage
from service.validation import MAX_FORM_FIELD_BYTES, MAX_FORM_PARTS, VALIDATORS

EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                   "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket", "X-RateLimit-Global",
                   "X-RateLimit-Scope"]


def allocate_node_id(db: Database) -> int:
    """Each process inserts a row; its id picks the snowflake node, so no two live processes share one."""
    with db.engine.begin() as connection:
        row_id = connection.execute(insert(IdNode).returning(IdNode.id)).scalar_one()
    return row_id % (MAX_NODE + 1)


def create_app(settings: Settings | None = None) -> GatewayServer:
    settings = settings or load_settings()
    logs.configure()
    document = spec.bundle(include_test_harness=settings.test_harness_enabled)
    db = Database(settings.database_url)
    bus = events.RedisEventBus(settings.redis_url, settings.events_channel) if settings.redis_url else events.EventBus()
    events.attach(db.session.session_factory, bus)
    runtime = Runtime(
        settings=settings,
        db=db,
        ids=SnowflakeGenerator(allocate_node_id(db)),
        passwords=PasswordHashing(settings.argon2_memory_kib, settings.argon2_time_cost),
        mailer=Mailer(settings),
        events=bus,
        storage=LocalStorage(settings.storage_dir),
        presence=RedisPresence(settings.redis_url, settings.events_channel) if settings.redis_url else MemoryPresence(),
    )
    storage.attach(db.session.session_factory, runtime.storage)

    app = FlaskApp(__name__, validator_map=VALIDATORS, jsonifier=Jsonifier(json, separators=(",", ":")))
    app.add_api(
        document,
        # Our own route serves the public bundle (named models, no internal keys).
        swagger_ui_options=SwaggerUIOptions(serve_spec=False, swagger_ui=True,
                                            swagger_ui_config={"url": f"{API_PREFIX}/openapi.json"}),
        pythonic_params=False,
        strict_validation=False,
    )
    public_spec = json.dumps(spec.public_document(document), separators=(",", ":"))

    flask_app = app.app
    flask_app.extensions[EXTENSION_KEY] = runtime
    # Flask parses a multipart body again after the validator: both hold it to the same bounds.
    flask_app.config.update(MAX_FORM_MEMORY_SIZE=MAX_FORM_FIELD_BYTES, MAX_FORM_PARTS=MAX_FORM_PARTS)

    @flask_app.get(f"{API_PREFIX}/openapi.json")
    def openapi_json():
        return flask.Response(public_spec, mimetype="application/json")

    @flask_app.before_request
    def bind_request_id():
        request_id_var.set(flask.request.headers.get("X-Request-ID", "-"))

    @flask_app.teardown_request
    def release_session(_exc):
        db.remove()

    errors.install(app, expose_traces=settings.env == "development")

    app.add_middleware(FluxerCORSMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       allow_origins=list(settings.cors_origins), allow_methods=["*"], allow_headers=["*"],
                       expose_headers=EXPOSED_HEADERS, max_age=600)
    app.add_middleware(_RuntimeScope, position=MiddlewarePosition.BEFORE_EXCEPTION, runtime=runtime)
    # Outside Connexion's exception layer, so every response, errors included, passes through them.
    routes = RouteTable(document["paths"], extra_paths={"/openapi.json": frozenset({"GET", "HEAD"})})
    app.add_middleware(RouteResolver, position=MiddlewarePosition.BEFORE_EXCEPTION, table=routes)
    app.add_middleware(RateLimitMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       settings=settings, document=document)
    app.add_middleware(MethodGuard, position=MiddlewarePosition.BEFORE_EXCEPTION)
    server = EdgeMiddleware(app, max_body_bytes=settings.max_body_bytes,
                            expose_traces=settings.env == "development", upload_path=attachments.UPLOAD_PATH,
                            max_upload_bytes=attachments.upload_body_limit(settings))
    server.connexion = app
    server.runtime = runtime
    return GatewayServer(server, runtime)


class _RuntimeScope:
    """Hands the runtime to code that runs before Flask (the security step)."""

    def __init__(self, app, runtime):
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope[SCOPE_KEY] = self.runtime
        await self.app(scope, receive, send)
