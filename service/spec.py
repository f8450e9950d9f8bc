"""Joins the hand-written, per-resource spec files into one OpenAPI document.

``openapi/openapi.yaml`` holds the shared components and maps each path to an entry of a
resource file (``auth.yaml#/paths/login``). Resource files keep their own ``schemas``,
``parameters`` and ``responses``; here they become ``#/components/...`` so that the served
document is self-contained and SDK generators get named models. Each operation is routed
to ``handlers.<resource file name>``: one handler module per resource file.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"
ROOT_FILE = "openapi.yaml"
TEST_HARNESS_FILE = "test_harness.yaml"
COMPONENT_SECTIONS = ("schemas", "parameters", "responses")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keys that tell Connexion how to run us; clients have no use for them.
INTERNAL_KEYS = ("x-openapi-router-controller", "x-apikeyInfoFunc")


class SpecError(ValueError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; in a spec that hides a mistake."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise SpecError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
            # `{description: a, b}` silently makes a key " b" with no value: an unquoted comma.
            if isinstance(key, str) and " " in key.strip() and value_node.value in ("", None):
                raise SpecError(f"key {key!r} without a value at line {key_node.start_mark.line + 1}; "
                                "quote text that contains a comma")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@functools.cache
def _load(name: str) -> dict:
    with open(SPEC_DIR / name, encoding="utf-8") as handle:
        try:
            return yaml.load(handle, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except SpecError as exc:
            raise SpecError(f"{name}: {exc}") from None


def _rewrite_refs(node, current_file: str):
    """Turn every cross-file or file-local $ref into a ref inside the bundled document."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = _bundle_ref(value, current_file)
            else:
                out[key] = _rewrite_refs(value, current_file)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, current_file) for item in node]
    return node


def _bundle_ref(ref: str, current_file: str) -> str:
    file_part, _, pointer = ref.partition("#")
    target = file_part or current_file
    if target == ROOT_FILE:
        return "#" + pointer
    section, _, name = pointer.strip("/").partition("/")
    if section not in COMPONENT_SECTIONS or not name:
        raise SpecError(f"{current_file}: cannot bundle $ref {ref!r}")
    return f"#/components/{section}/{name}"


def _resource_files(include_test_harness: bool) -> list[str]:
    names = sorted(p.name for p in SPEC_DIR.glob("*.yaml") if p.name != ROOT_FILE)
    return [n for n in names if include_test_harness or n != TEST_HARNESS_FILE]


def bundle(*, include_test_harness: bool) -> dict:
    """The whole API as one document, with the Connexion routing keys."""
    root = copy.deepcopy(_load(ROOT_FILE))
    files = _resource_files(include_test_harness)
    components = root.setdefault("components", {})

    for name in files:
        document = _load(name)
        for section in COMPONENT_SECTIONS:
            for key, value in (document.get(section) or {}).items():
                bucket = components.setdefault(section, {})
                if key in bucket:
                    raise SpecError(f"{name}: component {section}/{key} is defined twice")
                bucket[key] = _rewrite_refs(value, name)

    paths = {}
    for path, item in root["paths"].items():
        ref = item.get("$ref", "") if isinstance(item, dict) else ""
        file_name, _, pointer = ref.partition("#")
        if not file_name:
            raise SpecError(f"path {path} must be a $ref into a resource file")
        if file_name not in files:
            continue  # the test harness, outside development and test
        node = _load(file_name)
        for part in pointer.strip("/").split("/"):
            node = node[part]
        path_item = _rewrite_refs(node, file_name)
        controller = "handlers." + Path(file_name).stem
        for method in HTTP_METHODS:
            if method in path_item:
                path_item[method]["x-openapi-router-controller"] = controller
        paths[path] = path_item
    root["paths"] = paths
    return root


def public_document(document: dict) -> dict:
    """The bundle as clients see it: without the keys only our server reads."""
    if isinstance(document, dict):
        return {k: public_document(v) for k, v in document.items() if k not in INTERNAL_KEYS}
    if isinstance(document, list):
        return [public_document(v) for v in document]
    return document


def operations(document: dict):
    """(method, path, operation) for every operation of a bundled document."""
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method, path, item[method]
