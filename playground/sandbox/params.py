"""From a validated ChatRequest to a model Job, refusing what the model cannot honour.

Errors come out as FastAPI's: 400/404 `{"detail": "..."}` for requests the sandbox cannot
serve (a field it cannot honour is named, never silently ignored), 422 `{"detail": [{loc,
msg, type, input}]}` for values out of range.
"""

from __future__ import annotations

from typing import Any

from playground.client.schema import AssistantMessage, ChatRequest, ContentPart, ToolMessage, message_text
from playground.sandbox.grammars import SchemaError, check_grammar, response_format_grammar
from playground.sandbox.model import MODEL_ID, MODEL_NAME, Engine, Job, PromptTooLong
from playground.sandbox.sampling import SamplingParams
from playground.sandbox.tool_calls import calls_text, result_text, with_tools
from playground.sandbox.tool_request import ToolRequestError, tool_plan

MAX_N = 8
MODEL_IDS = (MODEL_ID, MODEL_NAME)

# Extra (non-OpenAI) sampling fields that llama.cpp does honour, as vLLM spells them.
EXTRA_SAMPLING = {"min_p": (0.0, 1.0), "typical_p": (0.0, 1.0), "repetition_penalty": (0.0, 10.0)}
# Unknown-to-the-schema fields that only label a request (OpenAI's end-user ids, cache
# keys): they change nothing a model does, so accepting them hides nothing.
INFORMATIONAL = {"user", "safety_identifier", "prompt_cache_key"}


class RequestError(Exception):
    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(detail if isinstance(detail, str) else str(detail))
        self.status_code = status_code
        self.detail = detail


def bad_request(message: str) -> RequestError:
    return RequestError(400, message)


def invalid(loc: list, message: str, value: Any, kind: str = "value_error", ctx: dict | None = None) -> RequestError:
    """A 422 in FastAPI's own shape."""
    item: dict[str, Any] = {"type": kind, "loc": ["body", *loc], "msg": message, "input": value}
    if ctx:
        item["ctx"] = ctx
    return RequestError(422, [item])


def check_model(model: str) -> None:
    if model not in MODEL_IDS:
        raise RequestError(404, f"model {model!r} not found; this server has: {', '.join(MODEL_IDS)}")


def build_job(request: ChatRequest, engine: Engine) -> Job:
    """Everything the model needs, or a RequestError."""
    check_model(request.model)
    _refuse_unsupported(request)
    extra = request.extra_fields
    _refuse_unknown_extras(extra)
    n = request.n if request.n is not None else 1
    if n > MAX_N:
        raise invalid(["n"], f"Input should be less than or equal to {MAX_N}", n, "less_than_equal", {"le": MAX_N})
    max_tokens = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    try:
        tools = tool_plan(request, engine.vocab)
    except ToolRequestError as error:
        raise bad_request(str(error)) from None
    sampling = SamplingParams(
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        top_k=request.top_k or 0,
        frequency_penalty=request.frequency_penalty or 0.0,
        presence_penalty=request.presence_penalty or 0.0,
        logit_bias=_logit_bias(request.logit_bias, engine.n_vocab),
        grammar=tools.grammar if tools is not None else _grammar(request, engine),
        grammar_until_text=tools is not None and tools.auto,
    )
    for name in EXTRA_SAMPLING:
        if name in extra:
            setattr(sampling, name, _extra_number(name, extra[name]))
    continue_final = _continue_final(request, tools is not None)
    messages = _messages(request)
    if tools is not None:
        messages = with_tools(messages, tools.prompt_text)
    try:
        prompt = engine.prompt_tokens(messages, add_generation_prompt=request.add_generation_prompt is not False,
                                      continue_final=continue_final)
    except PromptTooLong as error:
        raise bad_request(str(error)) from None
    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    return Job(
        prompt_tokens=prompt,
        max_tokens=max_tokens,
        n=n,
        seed=request.seed,
        stop=stop,
        logprobs=bool(request.logprobs),
        top_logprobs=request.top_logprobs or 0,
        sampling=sampling,
        prompt_logprobs=request.prompt_logprobs,
        tool_calls=tools is not None,
    )


def _continue_final(request: ChatRequest, tools: bool) -> bool:
    """vLLM's continue_final_message: the model continues the last (assistant) message."""
    if not request.continue_final_message:
        return False
    if request.add_generation_prompt is not False:
        raise bad_request("add_generation_prompt: must be false with continue_final_message "
                          "(the prompt ends inside the last message, not with a new answer's start)")
    last = request.messages[-1]
    if not isinstance(last, AssistantMessage) or last.tool_calls:
        raise bad_request("continue_final_message: the last message must be an assistant message with text "
                          "to continue")
    if tools:
        raise bad_request("continue_final_message: cannot continue a message while tools may be called "
                          "(set tool_choice to none)")
    return True


def _refuse_unsupported(request: ChatRequest) -> None:
    why = "the local model cannot honour it"
    if request.functions:
        raise bad_request("functions: the local sandbox takes tools, not the deprecated functions "
                          "(send each as a tool of type function)")
    if request.function_call is not None and request.function_call not in ("none", "auto"):
        raise bad_request("function_call: the local sandbox takes tool_choice, not the deprecated function_call")
    if request.audio is not None:
        raise bad_request(f"audio: the local sandbox model makes text only; {why}")
    if request.modalities is not None and any(m != "text" for m in request.modalities):
        raise bad_request(f"modalities: the local sandbox model makes text only; {why}")
    if request.prediction is not None:
        raise bad_request(f"prediction: predicted outputs are not supported by the local sandbox; {why}")
    if request.reasoning_effort is not None:
        raise bad_request(f"reasoning_effort: the local sandbox model does not reason; {why}")
    if request.store:
        raise bad_request(f"store: the local sandbox keeps no completions; {why}")


def _refuse_unknown_extras(extra: dict[str, Any]) -> None:
    for name in extra:
        if name not in EXTRA_SAMPLING and name not in INFORMATIONAL:
            raise bad_request(
                f"{name}: unknown field; the local sandbox cannot honour it "
                f"(extra sampling fields it takes: {', '.join(EXTRA_SAMPLING)})"
            )


def _extra_number(name: str, value: Any) -> float:
    low, high = EXTRA_SAMPLING[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise invalid([name], f"{name} must be a number between {low:g} and {high:g}", value)
    return float(value)


def _logit_bias(bias: dict[str, float] | None, n_vocab: int) -> dict[int, float]:
    result = {}
    for key, value in (bias or {}).items():
        token = int(key)
        if not 0 <= token < n_vocab:
            raise invalid(["logit_bias", key], f"token id {token} is outside the vocabulary (0..{n_vocab - 1})", value)
        result[token] = float(value)
    return result


def _grammar(request: ChatRequest, engine: Engine) -> str | None:
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return None
    schema = fmt.json_schema.schema_ if fmt.json_schema is not None else None
    field = "response_format.json_schema.schema" if fmt.type == "json_schema" else "response_format"
    try:
        grammar = response_format_grammar(fmt.type, schema, field)
        if grammar is not None:
            check_grammar(engine.vocab, grammar)
    except SchemaError as error:
        raise bad_request(str(error)) from None
    except ValueError as error:  # llama.cpp would not parse the grammar
        raise bad_request(f"{field}: cannot turn this schema into a grammar: {error}") from None
    return grammar


def _messages(request: ChatRequest) -> list[dict[str, str]]:
    """The conversation as the chat template takes it: tool calls and results in tool_calls.py's
    plain format (the model's template has no tools)."""
    messages = []
    names: dict[str, str] = {}  # tool call id -> function name, from the calls so far
    for i, message in enumerate(request.messages):
        role = message.role
        if role == "function":
            raise bad_request(f"messages[{i}].role: function messages are deprecated; send tool messages "
                              "(role tool, with tool_call_id)")
        if getattr(message, "function_call", None):
            raise bad_request(f"messages[{i}].function_call: deprecated; send tool_calls")
        content = message.content
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, ContentPart) and part.type != "text":
                    raise bad_request(f"messages[{i}].content[{j}].type: {part.type!r} parts need a multimodal model; "
                                      "the local sandbox reads text only")
        text = message_text(message)
        if isinstance(message, AssistantMessage) and message.tool_calls:
            for j, call in enumerate(message.tool_calls):
                if call.type != "function":
                    raise bad_request(f"messages[{i}].tool_calls[{j}].type: {call.type!r} calls are not available "
                                      "in the local sandbox; it takes function calls only")
                names[call.id] = call.function.name
            calls = calls_text([(call.function.name, call.function.arguments) for call in message.tool_calls])
            text = f"{text}\n{calls}" if text else calls
        if isinstance(message, ToolMessage):
            if message.tool_call_id not in names:
                raise bad_request(f"messages[{i}].tool_call_id: no earlier assistant message has a tool call "
                                  f"with id {message.tool_call_id!r}")
            role, text = "user", result_text(names[message.tool_call_id], text)
        messages.append({"role": "system" if role == "developer" else role, "content": text})
    return messages
