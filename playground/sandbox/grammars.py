"""llama.cpp grammars (GBNF) from JSON Schemas: for response_format, and for tool calls.

llama.cpp's converter (llama_cpp.llama_grammar.SchemaConverter) enforces only part of JSON
Schema and silently ignores the rest: `minimum` or `uniqueItems` would be dropped and the
model's answer could then break the schema it was promised to follow. `check_schema` walks a
schema as the converter will and refuses, naming the keyword, anything it would not enforce,
so whatever a grammar made here lets through validates against its schema.

A tool call is the JSON object {"name": NAME, "arguments": {...}} with the keys in that order;
with parallel calls allowed, several such objects one per line. Under tool_choice "auto" the
grammar also allows plain text, which must not begin with "{" or white space (so the first
character tells text from a call).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

import llama_cpp
from llama_cpp.llama_grammar import JSON_GBNF, STRING_FORMAT_RULES, SchemaConverter

GRAMMAR_ROOT = b"root"

# Keywords that change nothing a validator checks: kept out of the converter's way.
ANNOTATIONS = {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly",
               "$schema", "$id", "contentEncoding", "contentMediaType"}
# Validation keywords the converter never enforces, wherever they appear.
NEVER = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems", "contains",
         "minContains", "maxContains", "minProperties", "maxProperties", "patternProperties", "propertyNames",
         "dependentRequired", "dependentSchemas", "dependencies", "not", "if", "then", "else",
         "unevaluatedProperties", "unevaluatedItems", "additionalItems", "allOf", "oneOf"}
WHY_NOT = {"oneOf": " (use anyOf: a grammar cannot make the branches exclusive)",
           "allOf": " (merge the schemas into one object)"}
DEFS = ("$defs", "definitions")
TYPES = {"string", "number", "integer", "boolean", "null", "object", "array"}
FORMATS = {name.removesuffix("-string") for name in STRING_FORMAT_RULES if name.endswith("-string")}
UUID_FORMAT = re.compile(r"^uuid[1-5]?$")
# Keys of the schema objects that hold subschemas, as the walk below knows them.
STRUCTURE = {"type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
             "maxItems", "enum", "const", "anyOf", "$ref", "pattern", "format", "minLength", "maxLength", *DEFS}


class SchemaError(ValueError):
    """A schema the grammar cannot follow: `where` is the field, the message names the keyword."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


class GrammarError(ValueError):
    """A grammar llama.cpp would not parse."""


@dataclass(frozen=True)
class ToolSpec:
    """A function tool as the grammar sees it: its name and its parameters' schema."""

    name: str
    parameters: dict[str, Any]
    where: str = "parameters"  # the request's field, for errors


# --- checking a schema ------------------------------------------------------------------------


def check_schema(schema: Any, where: str) -> None:
    """Raise SchemaError for a schema the converter would not enforce in full."""
    _check(schema, where, root=True)


def _check(node: Any, where: str, root: bool = False) -> None:
    if isinstance(node, bool):
        if node is False:
            raise SchemaError(where, "the schema false allows no value at all")
        return
    if not isinstance(node, dict):
        raise SchemaError(where, f"a schema must be an object, got {json.dumps(node)[:40]}")
    never = sorted(set(node) & NEVER)
    if never:
        raise SchemaError(where, f"the local sandbox's grammar cannot enforce {never[0]!r}{WHY_NOT.get(never[0], '')}")
    for key in DEFS:
        if key in node:
            if not root:
                raise SchemaError(f"{where}.{key}", f"{key!r} is taken only at the schema's top level")
            for name, sub in _object(node[key], f"{where}.{key}").items():
                _check(sub, f"{where}.{key}.{name}")
    keys = _keys(node)
    branch, honoured = _branch(node, keys, where)
    ignored = sorted(k for k in keys - honoured if k in STRUCTURE)
    if ignored:
        raise SchemaError(where, f"the local sandbox's grammar cannot enforce {ignored[0]!r} beside {branch!r}")
    if branch in ("enum", "const"):
        _check_values(node, where, branch)
    for name, sub in (node.get("properties") or {}).items() if branch == "properties" else ():
        _check(sub, f"{where}.properties.{name}")
    if isinstance(node.get("additionalProperties"), dict) and branch == "properties":
        _check(node["additionalProperties"], f"{where}.additionalProperties")
    if branch == "items":
        items = node.get("items", node.get("prefixItems"))
        if isinstance(items, list):
            for i, sub in enumerate(items):
                _check(sub, f"{where}.{'items' if 'items' in node else 'prefixItems'}[{i}]")
        else:
            _check(items, f"{where}.items")
    if branch == "anyOf":
        alternatives = node["anyOf"]
        if not isinstance(alternatives, list) or not alternatives:
            raise SchemaError(f"{where}.anyOf", "anyOf needs a list of schemas")
        for i, sub in enumerate(alternatives):
            _check(sub, f"{where}.anyOf[{i}]")


def _keys(node: dict) -> set[str]:
    """The node's keywords that constrain a value here (annotations, keywords no validator knows
    either, $defs and a no-op additionalProperties: true left out)."""
    keys = set(node) & STRUCTURE - set(DEFS)
    if node.get("additionalProperties") is True:
        keys.discard("additionalProperties")
    return keys


def _branch(node: dict, keys: set[str], where: str) -> tuple[str, set[str]]:
    """Which of the converter's cases this node takes (its visit() order), and the keywords that
    case enforces; the other structural keywords of the node it would ignore."""
    kind = node.get("type")
    if "$ref" in keys:
        if not isinstance(node["$ref"], str) or not node["$ref"].startswith("#/"):
            raise SchemaError(f"{where}.$ref", "only references into the schema itself (#/...) are followed")
        return "$ref", {"$ref"}
    if "anyOf" in keys:
        return "anyOf", {"anyOf"}
    if isinstance(kind, list):
        unknown = [t for t in kind if t not in TYPES]
        if unknown or not kind:
            raise SchemaError(f"{where}.type", f"unknown type {unknown[0] if unknown else '[]'!r}")
        return "type", {"type"}
    if kind is not None and kind not in TYPES:
        raise SchemaError(f"{where}.type", f"unknown type {kind!r}")
    if "const" in keys:
        return "const", {"const", "type"}
    if "enum" in keys:
        return "enum", {"enum", "type"}
    if kind in (None, "object") and ("properties" in keys or ("additionalProperties" in keys
                                                               and node["additionalProperties"] is not True)):
        required = node.get("required") or []
        properties = _object(node.get("properties") or {}, f"{where}.properties")
        missing = [name for name in required if name not in properties]
        if missing:
            raise SchemaError(f"{where}.required", f"{missing[0]!r} is required but not among the properties "
                                                   "(the grammar writes only the properties it is given)")
        return "properties", {"properties", "required", "additionalProperties", "type"}
    if kind in (None, "array") and ("items" in keys or "prefixItems" in keys):
        if "items" in keys and "prefixItems" in keys:
            raise SchemaError(where, "the local sandbox's grammar cannot enforce 'prefixItems' beside 'items'")
        if isinstance(node.get("items", node.get("prefixItems")), list):
            return "items", {"items", "prefixItems", "type"}
        return "items", {"items", "minItems", "maxItems", "type"}
    if kind in (None, "string") and "pattern" in keys:
        return "pattern", {"pattern", "type"}
    if kind in (None, "string") and "format" in keys:
        fmt = node["format"]
        if not (isinstance(fmt, str) and (UUID_FORMAT.match(fmt) or fmt in FORMATS)):
            supported = ", ".join(sorted([*FORMATS, "uuid"]))
            raise SchemaError(f"{where}.format", f"the local sandbox's grammar cannot enforce format {fmt!r} "
                                                 f"(it knows {supported})")
        return "format", {"format", "type"}
    if kind == "string" and ("minLength" in keys or "maxLength" in keys):
        return "minLength", {"minLength", "maxLength", "type"}
    if kind is None and keys - {"type"}:
        raise SchemaError(where, f"the local sandbox's grammar cannot enforce {sorted(keys)[0]!r} without a type")
    return "type", {"type"}


def _check_values(node: dict, where: str, branch: str) -> None:
    """The grammar writes the listed values whatever else the node says: each must fit it."""
    values = [node["const"]] if branch == "const" else node["enum"]
    if not isinstance(values, list) or not values:
        raise SchemaError(f"{where}.enum", "enum needs a list of values")
    from playground.json_schema import schema_problem

    for value in values:
        if schema_problem(value, node) is not None:
            raise SchemaError(f"{where}.{branch}", f"{json.dumps(value)[:40]} does not fit the rest of this schema")


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise SchemaError(where, "must be an object")
    return value


def _plain(node: Any) -> Any:
    """The schema with only the keywords check_schema knows (annotations and keywords no validator
    knows either left out: the converter takes {"description": ...} for a schema it cannot read);
    property names that look like annotations stay."""
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key not in STRUCTURE:
            continue
        if key in ("properties", *DEFS) and isinstance(value, dict):
            out[key] = {name: _plain(sub) for name, sub in value.items()}
        elif key in ("enum", "const"):
            out[key] = value
        else:
            out[key] = _plain(value)
    return out


# --- grammars ---------------------------------------------------------------------------------


def response_format_grammar(response_format_type: str, schema: dict | None, where: str) -> str | None:
    """GBNF for a response_format: None for text, JSON for json_object, the schema's grammar
    for json_schema. Raises SchemaError."""
    if response_format_type == "json_object":
        return JSON_GBNF
    if response_format_type != "json_schema":
        return None
    schema = schema if schema is not None else {}
    check_schema(schema, where)
    converter = _converter()
    try:
        converter.visit(converter.resolve_refs(_plain(schema), "schema"), "")
    except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as error:
        raise SchemaError(where, f"cannot turn this schema into a grammar: {error}") from None
    return _format(converter)


def check_parameters(tool: ToolSpec) -> None:
    """Raise SchemaError unless the tool's parameters are an object schema the grammar enforces."""
    check_schema(tool.parameters, tool.where)
    branch = _branch(tool.parameters, _keys(tool.parameters), tool.where)[0]
    if tool.parameters.get("type", "object") != "object" or branch not in ("properties", "type"):
        raise SchemaError(tool.where, "a function's parameters must be a schema of type object with properties")


def tool_call_grammar(tools: list[ToolSpec], parallel: bool, allow_text: bool) -> str:
    """GBNF for a tool call of one of `tools` (several, one per line, when `parallel`), or when
    `allow_text` plain text instead. Raises SchemaError naming the tool's field."""
    converter = _converter()
    alternatives = []
    for i, tool in enumerate(tools):
        check_parameters(tool)
        parameters = _with_prefixed_defs(_plain(tool.parameters), f"t{i}-")
        try:
            parameters = converter.resolve_refs(parameters, f"tool{i}")
        except (AssertionError, KeyError, ValueError, TypeError) as error:
            raise SchemaError(tool.where, f"cannot turn this schema into a grammar: {error}") from None
        if "properties" not in parameters and "additionalProperties" not in parameters:
            parameters = {**parameters, "type": "object"}  # any object: the converter's own rule
        alternatives.append({"type": "object", "properties": {"name": {"const": tool.name}, "arguments": parameters},
                             "required": ["name", "arguments"]})
    try:
        converter.visit({"anyOf": alternatives} if len(alternatives) > 1 else alternatives[0], "call")
    except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as error:
        raise SchemaError("tools", f"cannot turn these schemas into a grammar: {error}") from None
    calls = 'call ("\\n" call)*' if parallel else "call"
    rules = _format(converter)
    if not allow_text:
        return f"root ::= {calls}\n{rules}"
    # Text: anything, as long as its first character is neither "{" nor white space.
    return f'root ::= {calls} | text\ntext ::= ([^{{ \\t\\n\\r] [^\\x00]*)?\n{rules}'


# The converter's string character takes control characters raw, which JSON forbids inside a
# string (json.loads refuses them): the grammar's strings take them escaped only.
_RAW_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def _format(converter: SchemaConverter) -> str:
    return converter.format_grammar().replace(_RAW_CHAR, _JSON_CHAR)


class _Converter(SchemaConverter):
    def _format_literal(self, literal: str) -> str:
        # The converter escapes quotes and line ends in a GBNF literal but not backslashes, so the
        # JSON text of "a \"quote\"" (an enum value, a property name) ended the literal early
        # (llama.cpp refused the grammar) and a JSON escape such as \\ came out as one backslash.
        return super()._format_literal(literal.replace("\\", "\\\\"))


def _converter() -> SchemaConverter:
    # prop_order: a call's name comes before its arguments, so a stream can say the name first.
    return _Converter(prop_order={"name": 0, "arguments": 1}, allow_fetch=False, dotall=False, raw_pattern=False)


def _with_prefixed_defs(schema: dict, prefix: str) -> dict:
    """The schema with its $defs renamed `prefix`NAME and its references to them rewritten: the
    converter names a definition's rule after it, and two tools may both define, say, `Item`."""
    schema = copy.deepcopy(schema)
    for key in DEFS:
        if isinstance(schema.get(key), dict):
            schema[key] = {prefix + name: sub for name, sub in schema[key].items()}

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            ref = node.get("$ref")
            for key in DEFS:
                if isinstance(ref, str) and ref.startswith(f"#/{key}/"):
                    node["$ref"] = f"#/{key}/{prefix}{ref[len(key) + 3:]}"
            for value in node.values():
                visit(value)

    visit(schema)
    return schema


def check_grammar(vocab, grammar: str) -> None:
    """Raise GrammarError if llama.cpp cannot parse the grammar."""
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), GRAMMAR_ROOT)
    if not sampler:
        raise GrammarError("llama.cpp could not parse the grammar made from this schema")
    llama_cpp.llama_sampler_free(sampler)


__all__ = ["GRAMMAR_ROOT", "GrammarError", "SchemaError", "ToolSpec", "check_grammar",
           "check_parameters", "check_schema", "response_format_grammar", "tool_call_grammar"]
