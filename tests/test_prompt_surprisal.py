"""The prompt's surprisal: vLLM's prompt_logprobs (one entry per prompt token, the first null,
each a map from token id to {logprob, rank, decoded_token}) read from a vLLM-shaped scripted
server, plain and streamed (the last chunk carries it), analysed per message, and drawn by the
Playground under the answer."""

from __future__ import annotations

import math
from html import unescape

import pytest

from playground.analysis import surprisal
from playground.client.client import ChatClient
from playground.client.schema import ChatRequest
from tests.apptest_support import open_groups, sandbox_stand_in, whole_app, widget
from tests.scripted_server import Reply, ScriptedServer, make_chunk

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
# A ChatML prompt as the model's tokens: template tokens around each message's text. Each
# position: (its own token, logprob, rank), then one alternative the model expected more.
PROMPT = [("<|im_start|>", None), ("system", -3.0), ("\n", -0.1), ("Be", -6.0), (" brief", -2.0), (".", -0.3),
          ("<|im_end|>", -0.01), ("\n", -0.01), ("<|im_start|>", -0.01), ("user", -0.05), ("\n", -0.01),
          ("Capital", -9.0), (" of", -0.7), (" France", -1.2), ("?", -0.4), ("<|im_end|>", -0.02)]


def vllm_prompt_logprobs() -> list[dict | None]:
    """vLLM's shape: the first entry null; the prompt's own token first in each map, with its rank."""
    out: list[dict | None] = []
    for n, (text, logprob) in enumerate(PROMPT):
        if logprob is None:
            out.append(None)
            continue
        own = {"logprob": logprob, "rank": 1 if logprob > -0.5 else 7, "decoded_token": text}
        expected = {"logprob": -0.05, "rank": 1, "decoded_token": " Paris" if text != " Paris" else " Lyon"}
        out.append({str(1000 + n): own, str(5): expected})
    return out


def test_prompt_tokens_and_each_messages_share():
    tokens = surprisal.prompt_tokens(vllm_prompt_logprobs())
    assert [t.text for t in tokens][1:] == [text for text, _ in PROMPT][1:]
    assert tokens[0].logprob is None and tokens[0].bits is None
    assert tokens[11].text == "Capital" and tokens[11].bits == pytest.approx(9.0 / math.log(2))
    assert tokens[11].rank == 7 and tokens[11].alternatives == [(" Paris", -0.05)]
    system, user = surprisal.by_message(tokens, MESSAGES)
    assert [t.text for t in system.tokens] == ["Be", " brief", "."]
    assert system.mean_bits == pytest.approx((6.0 + 2.0 + 0.3) / 3 / math.log(2))
    assert [t.text for t in user.tokens] == ["Capital", " of", " France", "?"]
    assert [t.text for t in user.most_surprising(2)] == ["Capital", " France"]


def completion_body() -> dict:
    return {"id": "cmpl-v", "object": "chat.completion", "created": 1, "model": "vllm/model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(PROMPT), "completion_tokens": 2, "total_tokens": len(PROMPT) + 2},
            "prompt_logprobs": vllm_prompt_logprobs()}


def streamed_reply() -> Reply:
    last = make_chunk(choices=[], usage={"prompt_tokens": len(PROMPT), "completion_tokens": 2,
                                         "total_tokens": len(PROMPT) + 2})
    last["prompt_logprobs"] = vllm_prompt_logprobs()
    return Reply.sse([make_chunk("", role="assistant"), make_chunk("Paris"), make_chunk("."),
                      make_chunk(finish_reason="stop"), last])


@pytest.mark.parametrize("stream", [False, True])
def test_a_vllm_reply_carries_prompt_logprobs_into_the_run(stream):
    with ScriptedServer() as server:
        server.add(streamed_reply() if stream else Reply.json(200, completion_body()))
        request = ChatRequest.from_wire({"model": "m", "messages": MESSAGES, "prompt_logprobs": 1, "stream": stream})
        with ChatClient(server.endpoint()) as client:
            run = client.run(request)
    assert run.error is None and run.text == "Paris."
    assert run.prompt_logprobs == vllm_prompt_logprobs()
    assert [r for r in server.requests if r.path.endswith("/chat/completions")][-1].json["prompt_logprobs"] == 1


def test_the_playground_colours_the_prompt_by_surprisal(monkeypatch, tmp_path):
    with sandbox_stand_in(tmp_path, monkeypatch, models=[("scripted-model", "scripted")]) as server:
        server.add(streamed_reply())
        at = whole_app()
        open_groups(at)
        at.run()
        keys = [w.key for w in at.text_area if w.key and w.key.startswith("msg_text_")]
        widget(at.text_area, keys[-1]).set_value("Capital of France?").run()
        at.button(key="run").click().run()
        assert not at.exception, [e.value for e in at.exception]
    html = unescape("\n".join(h.proto.body for h in at.html))
    assert "How surprising" in "\n".join(m.value for m in at.markdown)
    assert "user message" in html and "most surprising: Capital (13.0 bits), ␣France (1.7 bits)" in html
    assert "12.98 bits, p=<0.1%; the model expected ␣Paris (95.1%)" in html
    assert "red marks a token of the prompt the model did not expect" in html
    assert html.count('class="pg-prompt-token"') >= 4
