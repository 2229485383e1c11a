"""Validates offkit's --json documents against docs/schema with the Python jsonschema package
(an implementation that shares nothing with offkit).

Reads one JSON object per line on stdin: {"label": ..., "schema": "verify", "document": {...}}.
Prints one line per document that does not validate, and exits 1 if any did not.
"""

import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource

schemas = pathlib.Path(sys.argv[1])
registry = Registry()
by_name = {}
for path in sorted(schemas.glob("*.schema.json")):
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    by_name[path.name[: -len(".schema.json")]] = schema

bad = 0
count = 0
for line in sys.stdin:
    if not line.strip():
        continue
    item = json.loads(line)
    count += 1
    schema = by_name.get(item["schema"])
    if schema is None:
        print(f"{item['label']}: no schema docs/schema/{item['schema']}.schema.json")
        bad += 1
        continue
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(item["document"]), key=lambda e: list(e.path))
    if errors:
        bad += 1
        # anyOf reports its branches in context; show the deepest messages.
        details = []
        for e in errors:
            leaves = [c for c in e.context] or [e]
            for c in leaves:
                details.append(f"{'/'.join(map(str, c.absolute_path)) or '(top)'}: {c.message[:300]}")
        print(f"{item['label']} ({item['schema']}): " + " | ".join(details[:12]))
print(f"validated {count} documents, {bad} invalid", file=sys.stderr)
sys.exit(1 if bad else 0)
