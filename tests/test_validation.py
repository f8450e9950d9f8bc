"""service/validation.py: validators compiled once per schema, every failing field reported."""

from service import validation


def test_the_body_validator_is_built_once_not_per_request(client, monkeypatch):
    built = []

    class CountingValidator(validation.Draft4RequestValidator):
        # jsonschema also constructs sub-validators (by keyword) while it walks a schema;
        # only constructions for the body's root schema count as "building the validator".
        def __init__(self, schema=None, **kwargs):
            built.append(schema)
            super().__init__(schema=schema, **kwargs)

    monkeypatch.setattr(validation, "_validators", {})
    monkeypatch.setattr(validation, "Draft4RequestValidator", CountingValidator)
    for _ in range(5):
        response = client.post("/v1/auth/register", json={"email": "not-an-email", "password": "short"})
        assert response.status_code == 400
    root = built[0]
    assert sum(1 for schema in built if schema is root) == 1


def test_every_failing_field_is_reported_in_path_order(client):
    response = client.post("/v1/auth/register", json={"email": 5, "password": "x", "username": "no spaces"})
    assert response.status_code == 400
    paths = [error["path"] for error in response.json()["errors"]]
    assert paths == ["email", "password", "username"]
