"""Pydantic models of the chat-completions wire (SGP v4 and OpenAI-compatible).

Requests are strict about ranges (a bad value names the field and its range) and lenient
about the unknown: extra fields are kept and sent back unchanged. Responses are lenient
both ways, because real servers differ in what they leave out and add.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Numeric ranges of the request, also used by the UI for widget bounds.
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
    "top_logprobs": (0, 20),
    "prompt_logprobs": (0, 20),
    "n": (1, 128),
}
LOGIT_BIAS_RANGE = (-100.0, 100.0)
MAX_STOP_SEQUENCES = 4
MAX_TOOLS = 128


class _Open(BaseModel):
    """A wire object that keeps fields it does not know."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- messages -------------------------------------------------------------------------


class ContentPart(_Open):
    """One part of a multi-part message: text, image_url, input_audio, file, ..."""

    type: str
    text: str | None = None


Content = Union[str, list[ContentPart]]


class FunctionCall(_Open):
    name: str
    arguments: str = ""


class ToolCall(_Open):
    id: str
    type: str = "function"
    function: FunctionCall


class SystemMessage(_Open):
    role: Literal["system"] = "system"
    content: Content
    name: str | None = None


class DeveloperMessage(_Open):
    role: Literal["developer"] = "developer"
    content: Content
    name: str | None = None


class UserMessage(_Open):
    role: Literal["user"] = "user"
    content: Content
    name: str | None = None


class AssistantMessage(_Open):
    role: Literal["assistant"] = "assistant"
    content: Content | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    refusal: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _has_something(self) -> "AssistantMessage":
        if self.content is None and not self.tool_calls and self.function_call is None:
            raise ValueError("an assistant message needs content or tool_calls")
        return self


class ToolMessage(_Open):
    role: Literal["tool"] = "tool"
    content: Content
    tool_call_id: str


class FunctionMessage(_Open):
    """Deprecated role kept so old transcripts still load."""

    role: Literal["function"] = "function"
    content: str | None = None
    name: str


Message = Annotated[
    Union[SystemMessage, DeveloperMessage, UserMessage, AssistantMessage, ToolMessage, FunctionMessage],
    Field(discriminator="role"),
]
ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def message_text(message: BaseModel) -> str:
    """The plain text of a message's content (text parts joined), '' when it has none."""
    content = getattr(message, "content", None)
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text or "" for part in content)


# --- tools and formats ----------------------------------------------------------------


class FunctionDefinition(_Open):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Open):
    # Any type is kept (a server decides what it offers; the sandbox refuses all but "function"
    # with a 400 naming it); every tool still carries a function, which the rest of the app reads.
    type: str = "function"
    function: FunctionDefinition


class NamedFunction(_Open):
    name: str


class NamedToolChoice(_Open):
    type: Literal["function"] = "function"
    function: NamedFunction


class JSONSchemaFormat(_Open):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_when_needed(self) -> "ResponseFormat":
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type json_schema needs a json_schema object")
        return self


class StreamOptions(_Open):
    include_usage: bool | None = None


class AudioOptions(_Open):
    voice: str
    format: str


class Prediction(_Open):
    type: Literal["content"] = "content"
    content: Content


# --- the request ----------------------------------------------------------------------


class ChatRequest(_Open):
    """The body of POST /v4/beta/chat/completions (and of OpenAI's /v1/chat/completions)."""

    messages: list[Message] = Field(min_length=1)
    model: str = Field(min_length=1)
    audio: AudioOptions | None = None
    frequency_penalty: float | None = None
    function_call: Literal["none", "auto"] | NamedFunction | None = None
    functions: list[FunctionDefinition] | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    metadata: dict[str, str] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    n: int | None = None
    parallel_tool_calls: bool | None = None
    prediction: Prediction | None = None
    presence_penalty: float | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    tools: list[Tool] | None = None
    top_k: int | None = Field(default=None, ge=-1)
    top_logprobs: int | None = None
    top_p: float | None = None
    # vLLM's fields (the local sandbox honours them): end the prompt inside the last assistant
    # message, which the model continues (continue_final_message with add_generation_prompt
    # false), and the logprobs of every prompt token with the k most likely at each position.
    add_generation_prompt: bool | None = None
    continue_final_message: bool | None = None
    prompt_logprobs: int | None = None

    @field_validator(*RANGES)
    @classmethod
    def _in_range(cls, value: float | None, info) -> float | None:
        if value is None:
            return value
        low, high = RANGES[info.field_name]
        if not low <= value <= high:
            raise ValueError(f"{info.field_name} must be between {low:g} and {high:g}, got {value!r}")
        return value

    @field_validator("logit_bias", mode="before")
    @classmethod
    def _logit_bias(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        low, high = LOGIT_BIAS_RANGE
        for token, bias in value.items():
            if not str(token).lstrip("-").isdigit():
                raise ValueError(f"logit_bias keys must be token ids (integers), got {token!r}")
            if not isinstance(bias, (int, float)) or isinstance(bias, bool) or not low <= bias <= high:
                raise ValueError(f"logit_bias[{token}] must be between {low:g} and {high:g}, got {bias!r}")
        return {str(token): bias for token, bias in value.items()}

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"stop takes a string or at most {MAX_STOP_SEQUENCES} strings, got {len(value)}")
        return value

    @field_validator("tools", "functions")
    @classmethod
    def _tool_count(cls, value: list | None, info) -> list | None:
        if value is not None and len(value) > MAX_TOOLS:
            raise ValueError(f"{info.field_name} takes at most {MAX_TOOLS} functions, got {len(value)}")
        return value

    @model_validator(mode="after")
    def _top_logprobs_needs_logprobs(self) -> "ChatRequest":
        if self.top_logprobs is not None and self.top_logprobs > 0 and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs set to true")
        return self

    @property
    def extra_fields(self) -> dict[str, Any]:
        """Fields this model does not know (vLLM's min_p, SGP's chat_template_kwargs, ...)."""
        return dict(self.__pydantic_extra__ or {})

    def to_wire(self) -> dict[str, Any]:
        """The JSON body: unset (None) fields left out, unknown fields sent unchanged."""
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        _restore_null_extras(self, body)  # exclude_none must not drop an explicit null the user typed
        return body

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> "ChatRequest":
        return cls.model_validate(body)

    def changes_from(self, base: "ChatRequest") -> dict[str, Any]:
        """The wire fields this request sets differently from `base` (the messages as one field),
        each with its value here; REMOVED for a field `base` has and this one leaves out."""
        mine, theirs = self.to_wire(), base.to_wire()
        return {key: mine.get(key, REMOVED) for key in [*mine, *(k for k in theirs if k not in mine)]
                if mine.get(key, REMOVED) != theirs.get(key, REMOVED)}

    def with_changes(self, changes: dict[str, Any]) -> "ChatRequest":
        """This request with `changes` (as changes_from gives them) made. Raises ValidationError."""
        body = self.to_wire()
        for key, value in changes.items():
            if value is REMOVED:
                body.pop(key, None)
            else:
                body[key] = value
        return ChatRequest.from_wire(body)


class _Removed:
    """In a request's changes: the field is left out."""

    def __repr__(self) -> str:
        return "REMOVED"


REMOVED = _Removed()


def _restore_null_extras(model: BaseModel, dumped: dict[str, Any]) -> None:
    """Put back the unknown fields set to null, at every depth (exclude_none removed them)."""
    for key, value in (model.__pydantic_extra__ or {}).items():
        if value is None:
            dumped[key] = None
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        out = dumped.get(info.serialization_alias or info.alias or name)
        if isinstance(value, BaseModel) and isinstance(out, dict):
            _restore_null_extras(value, out)
        elif isinstance(value, list) and isinstance(out, list):
            for item, item_out in zip(value, out):
                if isinstance(item, BaseModel) and isinstance(item_out, dict):
                    _restore_null_extras(item, item_out)


def describe_error(error: ValidationError) -> list[str]:
    """One readable line per field error: 'temperature: must be between 0 and 2, got 3'."""
    lines = []
    for item in error.errors():
        loc = item["loc"]
        where = ".".join(str(part) for i, part in enumerate(loc) if not _is_union_tag(part, loc[i - 1] if i else None))
        message = _bound_message(item, where) or item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where and not message.startswith(where.split(".")[0]) else message)
    return lines


_BOUNDS = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most"),
           "greater_than": ("gt", "more than"), "less_than": ("lt", "less than")}


def _bound_message(item: Any, where: str) -> str | None:
    """pydantic's 'Input should be greater than or equal to 1' as 'n must be at least 1, got 0',
    the words the range validators use."""
    bound = _BOUNDS.get(item.get("type"))
    if bound is None or not where:
        return None
    limit, value = item.get("ctx", {}).get(bound[0]), item.get("input")
    if not isinstance(limit, (int, float)) or not isinstance(value, (int, float)):
        return None
    return f"{where} must be {bound[1]} {limit:g}, got {value!r}"


def _is_union_tag(part: Any, before: Any) -> bool:
    # pydantic puts the chosen union member's name in loc ('str', 'list[...]', 'function-after[...]'),
    # and a message's role right after its index (messages.0.user.content): a role anywhere else
    # is a real field name (tool_choice.function.name).
    if not isinstance(part, str):
        return False
    if part in ROLES:
        return isinstance(before, int)
    return "[" in part or part[:1].isupper() or part in ("str", "int", "float", "bool")


# --- responses ------------------------------------------------------------------------


class TopLogprob(_Open):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(_Open):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] = Field(default_factory=list)
    # The local sandbox's extra: the token's logprob in the distribution it was drawn from, after the
    # sampler chain (bias, penalties, grammar, temperature, top_k, top_p, min_p); 0 for a greedy pick.
    sampled_logprob: float | None = None


class PromptTokenLogprob(_Open):
    """One token of a prompt position in vLLM's prompt_logprobs: its logprob, its rank in the
    model's distribution there (1: the most likely), its text."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


# vLLM's shape: one entry per prompt token, the first null (nothing precedes it), each a map
# from token id to its logprob: the prompt's own token and the k most likely there.
PromptLogprobs = list[Union[dict[int, PromptTokenLogprob], None]]


class ChoiceLogprobs(_Open):
    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


Logprobs = ChoiceLogprobs


class Usage(_Open):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: dict[str, Any] | None = None
    completion_tokens_details: dict[str, Any] | None = None

    @property
    def cached_tokens(self) -> int | None:
        """prompt_tokens_details.cached_tokens: the prompt tokens the server read from its cache
        of an earlier request's prompt (None when it does not say)."""
        value = (self.prompt_tokens_details or {}).get("cached_tokens")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class ResponseMessage(_Open):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    refusal: str | None = None


class Choice(_Open):
    index: int = 0
    message: ResponseMessage = Field(default_factory=ResponseMessage)
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(_Open):
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice] = Field(default_factory=list)
    usage: Usage | None = None
    service_tier: str | None = None
    system_fingerprint: str | None = None
    prompt_logprobs: PromptLogprobs | None = None


class FunctionCallDelta(_Open):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(_Open):
    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta | None = None


class Delta(_Open):
    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    function_call: FunctionCallDelta | None = None
    refusal: str | None = None


class ChunkChoice(_Open):
    index: int = 0
    delta: Delta = Field(default_factory=Delta)
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(_Open):
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None
    prompt_logprobs: PromptLogprobs | None = None  # vLLM's, on a stream's last chunk


Chunk = ChatCompletionChunk
