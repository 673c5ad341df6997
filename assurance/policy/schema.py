"""The JSON Schema of the policy file, for editors: generated from the typed models.

Regenerate the checked-in `policy.schema.json` after changing a model or declaring a check:

    python -m assurance.policy.schema

A YAML editor picks it up with a first line `# yaml-language-server: $schema=<path>/policy.schema.json`.
Every key is optional in a policy file (the defaults are merged in first); the schema still lists
what each key means and which values it takes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assurance.policy.model import PolicyDocument

SCHEMA_FILE = Path(__file__).with_name("policy.schema.json")


# Lists replace the default's list whole, so a tier rule in a file must be complete.
WHOLE = ("TierRule",)


def _optional(schema: dict[str, Any]) -> None:
    """A policy file overrides the defaults key by key (mappings merge, lists replace), so only the
    keys of list items are required in it."""
    schema.pop("required", None)
    for name, definition in schema.get("$defs", {}).items():
        if name not in WHOLE:
            definition.pop("required", None)


def policy_schema() -> dict[str, Any]:
    """The JSON Schema a policy file (an override of the defaults) must satisfy."""
    schema = PolicyDocument.model_json_schema()
    _optional(schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render() -> str:
    return json.dumps(policy_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_FILE.write_text(render())
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
