"""Does a JSON value follow a JSON Schema? One answer for every caller: the experiments'
json_schema and contains_json checks, and tool-call arguments against their tool's parameters
(playground.tools, which the Playground's call view and the tool_called check both use)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

_SPACE = re.compile(r"\s+")


def schema_problem(data: Any, schema: dict[str, Any]) -> str | None:
    """The first way `data` breaks `schema` ("$.age: 'x' is not of type 'integer'"), or None."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    message = _SPACE.sub(" ", error.message).strip()
    return f"{where}: {message if len(message) <= 80 else message[:79] + chr(0x2026)}"


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    import jsonschema  # imported only when something is validated

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def schema_error(schema: Any) -> str | None:
    """Why `schema` is not a usable JSON Schema (its metaschema's first complaint), or None."""
    import jsonschema

    if not isinstance(schema, (dict, bool)):
        return f"a JSON Schema is an object, not {type(schema).__name__}"
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as error:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        return f"{where.lstrip('.') or 'the schema'}: {_SPACE.sub(' ', error.message)[:120]}"
    return None
