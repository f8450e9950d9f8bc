"""The bundled OpenAPI document: valid, routable, and honest about every error it can answer."""

from __future__ import annotations

import importlib
import json
import re

import pytest
from openapi_spec_validator import validate

from service import spec
from service.app import create_app
from tests.conftest import make_settings

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
BODY_METHODS = ("post", "put", "patch")


@pytest.fixture(scope="module", params=[True, False], ids=["with-harness", "production"])
def document(request):
    return spec.bundle(include_test_harness=request.param)


def test_bundle_validates(document):
    validate(spec.public_document(document))


def test_bundle_is_self_contained(document):
    text = json.dumps(document)
    refs = re.findall(r'"\$ref": "([^"]+)"', text)
    assert refs, "the bundle should use named components"
    for ref in refs:
        assert ref.startswith("#/"), ref
        node = document
        for part in ref[2:].split("/"):
            assert part in node, f"dangling $ref {ref}"
            node = node[part]


def test_operation_ids_unique(document):
    ids = [op["operationId"] for _m, _p, op in spec.operations(document)]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 20


def test_every_operation_routes_to_a_handler(document):
    for method, path, operation in spec.operations(document):
        operation_id = operation["operationId"]
        assert SNAKE_CASE.match(operation_id), f"{method} {path}: {operation_id} is not snake_case"
        assert operation.get("tags"), f"{method} {path} has no tags"
        controller = operation["x-openapi-router-controller"]
        assert controller.startswith("handlers.")
        module = importlib.import_module(controller)
        assert callable(getattr(module, operation_id, None)), f"{controller}.{operation_id} is missing"


def test_tags_are_declared(document):
    declared = {tag["name"] for tag in document["tags"]}
    for _m, _p, operation in spec.operations(document):
        assert set(operation["tags"]) <= declared


def test_every_operation_documents_its_errors(document):
    for method, path, operation in spec.operations(document):
        responses = set(operation["responses"])
        where = f"{method.upper()} {path}"
        assert {"429", "500"} <= responses, where
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= responses, where
        if operation.get("security", document.get("security")):
            assert "401" in responses, where
        assert any(code.startswith("2") for code in responses), where


def test_rate_limited_response_documents_headers(document):
    headers = document["components"]["responses"]["RateLimited"]["headers"]
    assert {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
            "X-RateLimit-Reset-After", "X-RateLimit-Bucket"} <= set(headers)


def test_login_declares_its_bucket(document):
    login = document["paths"]["/auth/login"]["post"]
    assert login["x-fluxer-ratelimit"]["limit"] == "10/10seconds"


def test_production_bundle_has_no_test_paths():
    paths = spec.bundle(include_test_harness=False)["paths"]
    assert not [p for p in paths if p.startswith("/test")]
    assert "/users/@me" in paths
    with_harness = spec.bundle(include_test_harness=True)["paths"]
    assert [p for p in with_harness if p.startswith("/test")]


def test_public_document_drops_internal_keys():
    document = spec.bundle(include_test_harness=True)
    public = json.dumps(spec.public_document(document))
    assert "x-openapi-router-controller" in json.dumps(document)
    for key in spec.INTERNAL_KEYS:
        assert key not in public


def test_bundle_rejects_duplicate_components(monkeypatch):
    original = spec._load

    def duplicated(name):
        loaded = original(name)
        if name == "users.yaml":
            loaded = {**loaded, "schemas": {**(loaded.get("schemas") or {}), "Snowflake": {"type": "string"}}}
        return loaded

    monkeypatch.setattr(spec, "_load", duplicated)
    # A resource file may not redefine a component the root already has.
    try:
        spec.bundle(include_test_harness=False)
    except spec.SpecError as exc:
        assert "Snowflake" in str(exc)
    else:
        pytest.fail("a component defined twice must be refused")


def test_served_document(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    text = response.text
    assert "x-openapi-router-controller" not in text
    assert "x-apikeyInfoFunc" not in text
    served = response.json()
    assert '"#/components/schemas/' in text
    assert "/test/emails" in served["paths"]  # test mode mounts the harness
    validate(served)
    # The unversioned alias serves the same document.
    assert client.get("/openapi.json").json() == served


def test_served_production_document_has_no_harness(database_url):
    from starlette.testclient import TestClient

    app = create_app(make_settings(database_url, FLUXER_ENV="production", FLUXER_SECRET_KEY="x" * 40))
    with TestClient(app) as client:
        served = client.get("/v1/openapi.json").json()
    assert not [p for p in served["paths"] if p.startswith("/test")]
    assert "Test Harness" not in json.dumps(served["paths"])
