"""Operator commands: ``python -m service.manage migrate | check-spec | dump-spec``."""

from __future__ import annotations

import argparse
import json
import sys

from service import spec
from service.config import load_settings
from service.db import migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.manage")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the database (DATABASE_URL) to the newest schema")
    sub.add_parser("check-spec", help="validate the bundled OpenAPI document")
    dump = sub.add_parser("dump-spec", help="print the public OpenAPI document (for client generators)")
    dump.add_argument("--with-test-harness", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "migrate":
        migrate(load_settings().database_url)
        print("database is at the newest schema")
    elif args.command == "check-spec":
        from openapi_spec_validator import validate

        for harness in (False, True):
            document = spec.bundle(include_test_harness=harness)
            validate(spec.public_document(document))
        count = sum(1 for _ in spec.operations(spec.bundle(include_test_harness=True)))
        print(f"openapi: valid, {count} operations")
    elif args.command == "dump-spec":
        document = spec.public_document(spec.bundle(include_test_harness=args.with_test_harness))
        json.dump(document, sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
