"""Request validators that replace Connexion 3.3's defaults.

Connexion builds a fresh JSON-schema validator for every request and stops at the first
error; a body that is not UTF-8 escapes as a 500. These subclasses compile each schema
once, report every failing field as ``INVALID_FORM_BODY`` and treat undecodable bodies as
the client's mistake (400). Multipart bodies get a validator of their own: Connexion's holds
the whole body in memory and lets its parser's errors escape as 500s.
"""

from __future__ import annotations

import json
import tempfile
import threading
import typing as t
from datetime import UTC, datetime

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import ExtraParameterProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import (
    VALIDATOR_MAP,
    AbstractRequestBodyValidator,
    JSONRequestBodyValidator,
    ParameterValidator,
)
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers

from service.errors import APIError, FieldError, field_error, invalid_form

# jsonschema keyword -> the error code clients see, in Discord's style.
KEYWORD_CODES = {
    "required": "BASE_TYPE_REQUIRED",
    "type": "BASE_TYPE_INVALID",
    "minLength": "BASE_TYPE_BAD_LENGTH",
    "maxLength": "BASE_TYPE_BAD_LENGTH",
    "minItems": "BASE_TYPE_BAD_LENGTH",
    "maxItems": "BASE_TYPE_BAD_LENGTH",
    "minimum": "NUMBER_TYPE_MIN",
    "maximum": "NUMBER_TYPE_MAX",
    "pattern": "STRING_TYPE_REGEX",
    "format": "BASE_TYPE_INVALID_FORMAT",
    "enum": "BASE_TYPE_CHOICES",
    "additionalProperties": "BASE_TYPE_UNKNOWN_FIELD",
    "oneOf": "BASE_TYPE_INVALID",
    "anyOf": "BASE_TYPE_INVALID",
}
MAX_REPORTED_ERRORS = 50
# Multipart bodies: bounds on what a part may hold besides file data (app.py gives Flask's own
# form parser the same ones), and how much of a body waits in memory before a temporary file.
MAX_FORM_FIELD_BYTES = 1024 * 1024
MAX_FORM_PARTS = 100
SPOOL_MEMORY_BYTES = 1024 * 1024
REPLAY_CHUNK_BYTES = 64 * 1024

# Every format jsonschema knows (Draft 4's own checker lacks `date`, so "2024-13-01" passed).
FORMATS = FormatChecker()
_cache_lock = threading.Lock()
_validators: dict[int, tuple[object, Draft4Validator]] = {}


def compiled(schema: dict, validator_class=Draft4Validator) -> Draft4Validator:
    """One validator per schema object for the life of the process."""
    key = id(schema)
    entry = _validators.get(key)
    if entry is None or entry[0] is not schema:
        with _cache_lock:
            # Keep the schema alive with its validator, so its id() is never reused.
            entry = (schema, validator_class(schema, format_checker=FORMATS))
            _validators[key] = entry
    return entry[1]


def _field_errors(errors: t.Iterable[ValidationError]) -> list[FieldError]:
    found: dict[tuple[str, str], FieldError] = {}
    for error in errors:
        parts = [str(p) for p in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, dict):
            for name in error.validator_value:
                if name not in error.instance:
                    path = ".".join([*parts, name])
                    found.setdefault((path, "required"), FieldError(
                        path, KEYWORD_CODES["required"], "This field is required"))
            continue
        path = ".".join(parts)
        key = (path, str(error.validator))
        if key not in found:
            found[key] = FieldError(path, KEYWORD_CODES.get(str(error.validator), "BASE_TYPE_INVALID"),
                                    error.message[:300])
        if len(found) >= MAX_REPORTED_ERRORS:
            break
    return sorted(found.values(), key=lambda e: e.path)


def decode_json(raw: bytes, encoding: str | None, what: str) -> t.Any:
    """JSON text as a value; undecodable or malformed text is 400 ``BAD_REQUEST`` naming ``what``."""
    try:
        text = raw.decode(encoding or "utf-8")
        value = json.loads(text)
    except UnicodeDecodeError:
        raise APIError(400, "BAD_REQUEST", f"{what} is not valid UTF-8") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise APIError(400, "BAD_REQUEST", f"{what} is not valid JSON: {exc}"[:300]) from None
    # PostgreSQL text cannot hold NUL, and no chat text needs it: refuse it here, once, for every body.
    if "\\u0000" in text and _holds_nul(value):
        raise APIError(400, "BAD_REQUEST", f"{what} contains a NUL character (\\u0000)")
    return value


def parse_instant(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 date-time from a request field, as an aware UTC datetime (no offset means UTC).
    Unparsable text, or an offset that moves it outside the calendar, is 400 on ``field``."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise field_error(field, "BASE_TYPE_INVALID_FORMAT", "Not an ISO 8601 date-time") from None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before the year 1 in UTC
        raise field_error(field, "BASE_TYPE_INVALID_FORMAT", "Out of the range of dates") from None


def _holds_nul(value: t.Any) -> bool:
    pending = [value]  # a loop, not recursion: bodies may nest as deep as the JSON parser allows
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class JSONBodyValidator(JSONRequestBodyValidator):
    @property
    def _validator(self):
        return compiled(self._schema, Draft4RequestValidator)

    async def _parse(self, stream, scope) -> t.Any:
        raw = b"".join([chunk async for chunk in stream])
        if not raw.strip():
            return None
        return decode_json(raw, self._encoding, "Request body")

    def _validate(self, body: t.Any) -> None:
        if body is None:
            if not self._nullable:
                raise invalid_form([FieldError("", "BASE_TYPE_REQUIRED", "A JSON request body is required")])
            return
        errors = _field_errors(self._validator.iter_errors(body))
        if errors:
            raise invalid_form(errors)


class AllErrorsParameterValidator(ParameterValidator):
    """Checks every query, path and header parameter and reports them together."""

    def _check(self, location: str, param: dict, value) -> list[FieldError]:
        name = param["name"]
        if value is None:
            if param.get("required"):
                return [FieldError(name, "BASE_TYPE_REQUIRED", f"Missing {location} parameter '{name}'")]
            return []
        if isinstance(value, str) and "\x00" in value:
            return [FieldError(name, "BASE_TYPE_INVALID", "Must not contain a NUL character")]
        schema = param.get("schema", param)
        errors = _field_errors(compiled(schema).iter_errors(value))
        return [FieldError(name, e.code, e.message) for e in errors]

    def validate_request(self, request) -> None:
        if self.strict_validation:
            extra = self.validate_query_parameter_list(request, security_params=self.security_query_params)
            if extra:
                raise ExtraParameterProblem(param_type="query", extra_params=extra)
        errors: list[FieldError] = []
        for param in self.parameters.get("query", []):
            errors += self._check("query", param, request.query_params.get(param["name"]))
        for param in self.parameters.get("path", []):
            errors += self._check("path", param, request.path_params.get(param["name"].replace("-", "_")))
        for param in self.parameters.get("header", []):
            errors += self._check("header", param, request.headers.get(param["name"]))
        if errors:
            raise invalid_form(errors)


FORM_JSON_KEY = "fluxer.form_json"


def validated_form_json(environ: dict) -> dict:
    """The JSON parts of this request's multipart body as the validator decoded and checked them."""
    return environ["asgi.scope"].get(FORM_JSON_KEY, {})


def _malformed_multipart(detail: str) -> APIError:
    return APIError(400, "BAD_REQUEST", f"Malformed multipart body: {detail}")


class _FormParts:
    """python-multipart callbacks: keep the JSON parts, skip file data, refuse other text parts."""

    def __init__(self, json_fields: set[bytes]):
        self.json_fields = json_fields
        self.json_parts: dict[str, bytes] = {}
        self.count = 0
        self.ended = False
        self._header_name = self._header_value = self._disposition = b""
        self._name = b""
        self._kept: bytearray | None = None  # the current part's bytes; None in a file part

    def callbacks(self) -> dict:
        return {"on_part_begin": self.on_part_begin, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished, "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end, "on_end": self.on_end}

    def on_part_begin(self) -> None:
        self.count += 1
        if self.count > MAX_FORM_PARTS:
            raise _malformed_multipart(f"more than {MAX_FORM_PARTS} parts")
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        try:  # Flask's parser would drop the whole form, silently
            (self._header_name + self._header_value).decode()
        except UnicodeDecodeError:
            raise _malformed_multipart("a part's headers are not UTF-8") from None
        if self._header_name.lower() == b"content-disposition":
            if self._disposition:  # parsers disagree on which one counts: accept neither
                raise _malformed_multipart("a part has two Content-Disposition headers")
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise _malformed_multipart("a part has no name in its Content-Disposition")
        self._name = options[b"name"]
        if b"filename" in options:
            self._kept = None
        elif self._name in self.json_fields:
            self._kept = bytearray()
        else:  # nothing would read it: say so rather than drop what the client meant to send
            expected = ", ".join(sorted(name.decode() for name in self.json_fields))
            raise invalid_form([FieldError(self._name.decode(), "BASE_TYPE_INVALID",
                                           f"A part is a file (it has a filename) or one of: {expected}")])

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._kept is None:
            return
        if len(self._kept) + end - start > MAX_FORM_FIELD_BYTES:
            raise APIError(413, "PAYLOAD_TOO_LARGE", f"A form field is larger than {MAX_FORM_FIELD_BYTES} bytes")
        self._kept += data[start:end]

    def on_part_end(self) -> None:
        if self._kept is not None:
            name = self._name.decode()
            if name in self.json_parts:
                raise invalid_form([FieldError(name, "BASE_TYPE_INVALID", "Send this part once")])
            self.json_parts[name] = bytes(self._kept)

    def on_end(self) -> None:
        self.ended = True


class MultipartBodyValidator(AbstractRequestBodyValidator):
    """``multipart/form-data`` with JSON parts (Discord's ``payload_json``) beside file parts.

    A part whose schema is an object is JSON (OpenAPI's default encoding for objects): it is
    decoded as UTF-8 and validated with the compiled schema like a JSON body, its errors named
    by the paths inside it. File parts are left to the handler (``request.files``); any other
    text part is refused, since nothing would read it. The body
    streams through the parser once while it is spooled (memory, then a temporary file) and is
    then replayed, with its length, to Flask, which parses it again for the handler: memory use
    does not grow with the upload. Broken framing, a non-UTF-8 or malformed JSON part: 400.
    """

    async def wrap_receive(self, receive, *, scope):
        _, options = parse_options_header(Headers(scope=scope).get("content-type"))
        if not options.get(b"boundary"):
            raise _malformed_multipart("the Content-Type names no boundary")
        properties = self._schema.get("properties", {})
        parts = _FormParts({name.encode() for name, schema in properties.items() if schema.get("type") == "object"})
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - the replay closes it
        try:
            parser = MultipartParser(options[b"boundary"], parts.callbacks())
            more_body = True
            while more_body:
                message = await receive()
                chunk = message.get("body", b"")
                spool.write(chunk)
                parser.write(chunk)
                more_body = message.get("more_body", False)
            if not parts.ended:
                raise _malformed_multipart("it ends before its closing boundary")
            decoded = {}
            for name, raw in parts.json_parts.items():
                decoded[name] = decode_json(raw, "utf-8", f"Form field {name}")
                errors = _field_errors(compiled(properties[name], Draft4RequestValidator).iter_errors(decoded[name]))
                if errors:
                    raise invalid_form(errors)
        except FormParserError:
            spool.close()
            raise _malformed_multipart("the parts are not framed by the boundary") from None
        except BaseException:
            spool.close()
            raise
        length = spool.tell()
        spool.seek(0)
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"transfer-encoding")]
        # The handler takes the JSON parts from here (validated_form_json), never from a second parse.
        scope = {**scope, "headers": [*headers, (b"content-length", str(length).encode())], FORM_JSON_KEY: decoded}
        return _replay(spool, length, receive), scope


def _replay(spool, length: int, receive):
    """A receive channel that hands out the spooled body, then closes the spool."""

    async def replayed():
        if spool.closed:
            return await receive()
        chunk = spool.read(REPLAY_CHUNK_BYTES)
        more_body = spool.tell() < length
        if not more_body:
            spool.close()
        return {"type": "http.request", "body": chunk, "more_body": more_body}

    return replayed


VALIDATORS = {
    "parameter": AllErrorsParameterValidator,
    "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": JSONBodyValidator,
                           "multipart/form-data": MultipartBodyValidator}),
}
