"""The one error type of the service, and how every failure becomes a JSON body.

Every non-2xx answer is ``{code, message, error}`` (``error`` repeats ``message``, as the
brief's example shows); validation failures add ``errors: [{path, code, message}]`` and a
429 adds ``retry_after`` and ``global``. Connexion's own problems (routing, validation,
security) are translated here too, so no route can answer in another shape.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

from connexion.exceptions import (
    BadRequestProblem,
    ExtraParameterProblem,
    OAuthProblem,
    OAuthResponseProblem,
    OAuthScopeProblem,
    ProblemException,
    UnsupportedMediaTypeProblem,
)
from connexion.lifecycle import ConnexionResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("fluxer.errors")

# Codes for statuses whose cause is generic; specific failures pass their own code.
STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL_SERVER_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "SERVICE_UNAVAILABLE",
}


@dataclass(frozen=True)
class FieldError:
    path: str
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"path": self.path, "code": self.code, "message": self.message}


class APIError(Exception):
    """Raise anywhere in the service to answer with ``status`` and an error body."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        *,
        errors: Iterable[FieldError] = (),
        headers: dict[str, str] | None = None,
        **extra,
    ):
        self.status_code = status  # the attribute Connexion's security layer ranks errors by
        self.code = code or STATUS_CODES.get(status, "GENERAL_ERROR")
        self.message = message or HTTPStatus(status).phrase
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(f"{status} {self.code}: {self.message}")

    def body(self) -> dict:
        body = {"code": self.code, "message": self.message, "error": self.message}
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        body.update(self.extra)
        return body

    def to_json(self) -> str:
        return json.dumps(self.body(), separators=(",", ":"))


def invalid_form(errors: Iterable[FieldError], message: str = "Invalid form body") -> APIError:
    return APIError(400, "INVALID_FORM_BODY", message, errors=errors)


def field_error(path: str, code: str, message: str) -> APIError:
    return invalid_form([FieldError(path, code, message)])


def not_found(code: str, what: str) -> APIError:
    return APIError(404, code, f"Unknown {what}")


def error_response(error: APIError) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=error.status_code,
        body=error.to_json(),
        mimetype="application/json",
        content_type="application/json",
        headers=error.headers,
    )


def from_problem(exc: ProblemException | StarletteHTTPException) -> APIError:
    """Translate Connexion's and Starlette's exceptions into ours."""
    status = getattr(exc, "status", None) or getattr(exc, "status_code", 500)
    detail = str(getattr(exc, "detail", "") or "") or HTTPStatus(status).phrase
    headers = dict(getattr(exc, "headers", None) or {})
    if isinstance(exc, ExtraParameterProblem):
        return invalid_form(
            [FieldError(name, "UNKNOWN_PARAMETER", f"Unknown {exc.param_type} parameter")
             for name in sorted(exc.extra_params)]
        )
    if isinstance(exc, UnsupportedMediaTypeProblem):
        return APIError(415, message=detail, headers=headers)
    if isinstance(exc, OAuthScopeProblem):
        return APIError(403, "MISSING_PERMISSIONS", "Missing permissions", headers=headers)
    if isinstance(exc, OAuthProblem | OAuthResponseProblem):
        return APIError(401, "UNAUTHORIZED", "Unauthorized", headers=headers)
    if isinstance(exc, BadRequestProblem):
        return APIError(400, "BAD_REQUEST", detail, headers=headers)
    if status == 404:
        return APIError(404, "NOT_FOUND", "Not found", headers=headers)
    if status >= 500:
        return APIError(status, message=HTTPStatus(status).phrase, headers=headers)
    return APIError(status, message=detail, headers=headers)


def install(app, *, expose_traces: bool) -> None:
    """Register the handlers that turn every exception into the error body."""

    def api_error(_request, exc: APIError) -> ConnexionResponse:
        return error_response(exc)

    def problem(_request, exc) -> ConnexionResponse:
        return error_response(from_problem(exc))

    def unexpected(_request, exc: Exception) -> ConnexionResponse:
        log.error("unhandled exception", exc_info=exc)
        error = APIError(500, "INTERNAL_SERVER_ERROR", "Internal server error")
        if expose_traces:
            # Development only: the brief promises stack traces there and never elsewhere.
            error.extra["trace"] = traceback.format_exception(exc)
        return error_response(error)

    app.add_error_handler(APIError, api_error)
    app.add_error_handler(ProblemException, problem)
    app.add_error_handler(StarletteHTTPException, problem)
    app.add_error_handler(Exception, unexpected)


def limit_reached(code: str, what: str, maximum: int) -> APIError:
    """A count limit (guilds, channels, roles, ...), named by the reference's MAX_* codes."""
    return APIError(400, code, f"Maximum number of {what} reached ({maximum})", max=maximum)
