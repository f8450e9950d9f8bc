"""Request validators that replace Connexion 3.3's defaults.

Connexion builds a fresh JSON-schema validator for every request and stops at the first
error; a body that is not UTF-8 escapes as a 500. These subclasses compile each schema
once, report every failing field as ``INVALID_FORM_BODY`` and treat undecodable bodies as
the client's mistake (400).
"""

from __future__ import annotations

import json
import threading
import typing as t

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import ExtraParameterProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, FormatChecker, ValidationError

from service.errors import APIError, FieldError, invalid_form

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


class JSONBodyValidator(JSONRequestBodyValidator):
    @property
    def _validator(self):
        return compiled(self._schema, Draft4RequestValidator)

    async def _parse(self, stream, scope) -> t.Any:
        raw = b"".join([chunk async for chunk in stream])
        if not raw.strip():
            return None
        try:
            return json.loads(raw.decode(self._encoding or "utf-8"))
        except UnicodeDecodeError:
            raise APIError(400, "BAD_REQUEST", "Request body is not valid UTF-8") from None
        except (json.JSONDecodeError, RecursionError) as exc:
            raise APIError(400, "BAD_REQUEST", f"Request body is not valid JSON: {exc}"[:300]) from None

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


VALIDATORS = {
    "parameter": AllErrorsParameterValidator,
    "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": JSONBodyValidator}),
}
