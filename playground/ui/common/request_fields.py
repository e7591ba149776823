"""What the parameter form holds: a Field for every simple field of the seed request, in the
groups issue 4 names, and `widget_values(request)`, the value of every form widget for a
request (the request -> form direction; playground.ui.common.request_sync goes back). No Streamlit here.

Every widget has the base key "p_<name>" (an editor puts its prefix before it). An empty widget
(None, "", []) means "not sent".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from playground.client.schema import ChatRequest

UNSET_LABEL = "not set"
TRI = [None, True, False]
AUDIO_FORMATS = ("wav", "mp3", "flac", "opus", "pcm16", "aac")


@dataclass(frozen=True)
class Field:
    name: str  # widget key suffix; usually the wire field
    kind: str  # float | int | tri | choice | json | text | stop | multi
    help: str
    label: str | None = None
    options: tuple = ()
    step: float | None = None
    json_type: type | None = None  # for kind "json": dict or list

    @property
    def key(self) -> str:
        return f"p_{self.name}"


# The groups, exactly as issue 4 lists them. Compound fields (response_format, tool_choice,
# function_call, audio, prediction, stream_options, extra fields) have their own widgets in request_form.py;
# tools have the tools editor (playground.ui.common.tools_editor: a card per function).
GROUPS: dict[str, list[Field]] = {
    "Sampling": [
        Field("temperature", "float", "Randomness: 0 is nearly greedy, higher is more varied.", step=0.05),
        Field("top_p", "float",
              "Nucleus sampling: keep the smallest set of tokens whose probability adds up to this.",
              step=0.05),
        Field("top_k", "int",
              "Sample only from the k most likely tokens (-1 or 0: no limit). Not every server takes it."),
        Field("seed", "int", "Same seed and request should give the same answer (best effort on most servers)."),
        Field("n", "int", "How many answers to generate for the one prompt."),
    ],
    "Length and stop": [
        Field("max_completion_tokens", "int", "Upper bound on generated tokens (the newer name)."),
        Field("max_tokens", "int", "Upper bound on generated tokens (the older name; some servers want this one)."),
        Field("stop", "stop", "Up to 4 sequences that end the answer, one per line (write \\n for a newline)."),
    ],
    "Penalties": [
        Field("frequency_penalty", "float", "Lower the odds of tokens in proportion to how often they appeared.",
              step=0.1),
        Field("presence_penalty", "float", "Lower the odds of any token that already appeared.", step=0.1),
        Field("logit_bias", "json", 'Token id -> bias from -100 to 100, as JSON: {"50256": -100}.', json_type=dict),
    ],
    "Logprobs": [
        Field("logprobs", "tri", "Return the log probability of every generated token."),
        Field("top_logprobs", "int",
              "Also return the k most likely alternatives at each position (0 to 20; needs logprobs)."),
        Field("prompt_logprobs", "int",
              "Also return the logprob of every prompt token, with k alternatives each (0 to 20): vLLM's "
              "field, which the local sandbox reads too. The prompt is then coloured by surprisal."),
    ],
    "Output": [
        Field("modalities", "multi", "Output types to generate: text, and audio on models that speak.",
              options=("text", "audio")),
    ],
    "Tools": [
        Field("parallel_tool_calls", "tri", "Allow several tool calls in one answer."),
        Field("functions", "json", "Deprecated function definitions, as a JSON list.", json_type=list),
    ],
    "Advanced": [
        Field("reasoning_effort", "choice", "How hard a reasoning model thinks before it answers.",
              options=("low", "medium", "high")),
        Field("metadata", "json", "Tags stored with the completion, as a JSON object of strings.", json_type=dict),
        Field("store", "tri", "Ask the server to store this completion."),
        Field("stream", "tri", "Stream tokens as they are generated (the Playground shows them live)."),
    ],
}

ALL_FIELDS = [f for fields in GROUPS.values() for f in fields]
BY_NAME = {f.name: f for f in ALL_FIELDS}


# --- text codecs for the widgets ------------------------------------------------------------


def json_text(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


def parse_json(text: str, json_type: type | None) -> Any:
    """The JSON in a widget (None when empty); ValueError naming the line, or the wrong type."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if json_type is not None and not isinstance(value, json_type):
        raise ValueError(f"must be a JSON {'object' if json_type is dict else 'list'}")
    return value


def encode_line(text: str) -> str:
    """One stop sequence as one line of the stop box (\\n, \\t, \\r and \\ written out)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def decode_line(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# --- request -> widget values ---------------------------------------------------------------


def widget_values(request: ChatRequest) -> dict[str, Any]:
    """The value of every form widget for this request."""
    body = request.to_wire()
    values: dict[str, Any] = {}
    for f in ALL_FIELDS:
        value = body.get(f.name)
        if f.kind == "json":
            values[f.key] = json_text(value)
        elif f.kind == "stop":
            items = [value] if isinstance(value, str) else (value or [])
            values[f.key] = "\n".join(encode_line(s) for s in items)
        elif f.kind == "multi":
            values[f.key] = list(value or [])
        elif f.kind == "float":
            values[f.key] = float(value) if value is not None else None
        else:
            values[f.key] = value
    rf = body.get("response_format") or {}
    schema = rf.get("json_schema") or {}
    values["p_response_format_type"] = rf.get("type")
    values["p_response_format_name"] = schema.get("name", "")
    values["p_response_format_schema"] = json_text(schema.get("schema"))
    values["p_response_format_strict"] = schema.get("strict")
    audio = body.get("audio") or {}
    values["p_audio_voice"] = audio.get("voice", "")
    values["p_audio_format"] = audio.get("format")
    prediction = body.get("prediction") or {}
    content = prediction.get("content")
    values["p_prediction"] = content if isinstance(content, str) else json_text(content) if content else ""
    choice = body.get("tool_choice")
    values["p_tool_choice"] = "function" if isinstance(choice, dict) else choice
    named = ((choice or {}).get("function") or {}).get("name", "") if isinstance(choice, dict) else ""
    values["p_tool_choice_name"] = named
    call = body.get("function_call")
    values["p_function_call"] = "function" if isinstance(call, dict) else call
    values["p_function_call_name"] = call.get("name", "") if isinstance(call, dict) else ""
    values["p_stream_include_usage"] = (body.get("stream_options") or {}).get("include_usage")
    values["p_extra"] = json_text(request.extra_fields) if request.extra_fields else ""
    for i, tool in enumerate(body.get("tools") or []):  # the tools editor's cards
        function = tool.get("function") or {}
        values[f"p_tool{i}_name"] = function.get("name", "")
        values[f"p_tool{i}_description"] = function.get("description") or ""
        values[f"p_tool{i}_parameters"] = json_text(function.get("parameters"))
    return values
