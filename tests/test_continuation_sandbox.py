"""Issue 24's UI side on the real local model: the capability probe finds that the sandbox
continues a final assistant message, and a branch built from a run's alternative is continued
from there (the answer's text before the branch point unchanged, the chosen token in place); the
sandbox's prompt_logprobs are read per message by the surprisal analysis."""

from __future__ import annotations

import pytest

from playground.client.client import ChatClient
from playground.client.schema import ChatRequest
from playground.runs import continuation

pytestmark = pytest.mark.sandbox
MODEL = "local/smollm2-135m-instruct"


def test_the_sandbox_is_offered_branching_and_a_branch_continues(sandbox):
    continuation.forget()
    assert continuation.probe(sandbox.endpoint, MODEL) == continuation.Capability(True)
    with ChatClient(sandbox.endpoint) as client:
        run = client.run(ChatRequest.from_wire({
            "model": MODEL, "temperature": 0, "max_tokens": 12, "logprobs": True, "top_logprobs": 3,
            "messages": [{"role": "user", "content": "Name three colours."}]}))
        assert run.error is None and len(run.choices[0].logprobs) >= 4, run
        tokens = run.choices[0].logprobs
        alternative = next(rank for rank, alt in enumerate(tokens[3].top_logprobs) if alt.token != tokens[3].token)
        request, origin = continuation.branch_request(run, 3, alternative)
        branch = client.run(request)
    prefix = "".join(t.token for t in tokens[:3]) + tokens[3].top_logprobs[alternative].token
    assert request.to_wire()["messages"][-1] == {"role": "assistant", "content": prefix}
    assert origin.position == 3 and origin.token == tokens[3].top_logprobs[alternative].token
    assert branch.error is None and branch.text, branch
    # the continuation goes on from the prefix: it does not start the answer again
    assert not (prefix + branch.text).startswith(prefix + prefix.strip()[:6])
    continuation.forget()


def test_the_sandboxs_prompt_logprobs_read_per_message(sandbox):
    """The sandbox's prompt_logprobs (vLLM's shape) read by playground.analysis.surprisal: each
    message's own words are found among the prompt's tokens, each with a surprisal."""
    from playground.analysis import surprisal

    messages = [{"role": "system", "content": "You answer in one word."},
                {"role": "user", "content": "What colour is the sky on a clear day?"}]
    with ChatClient(sandbox.endpoint) as client:
        run = client.run(ChatRequest.from_wire({"model": MODEL, "temperature": 0, "max_tokens": 3,
                                                "prompt_logprobs": 2, "messages": messages}))
    assert run.error is None and run.prompt_logprobs and run.prompt_logprobs[0] is None
    assert len(run.prompt_logprobs) == run.usage.prompt_tokens
    system, user = surprisal.by_message(surprisal.prompt_tokens(run.prompt_logprobs), messages)
    assert "".join(t.text for t in system.tokens).strip() == "You answer in one word."
    assert "".join(t.text for t in user.tokens).strip() == "What colour is the sky on a clear day?"
    assert all(t.bits is not None and t.bits >= 0 for t in system.tokens + user.tokens)
    assert user.mean_bits is not None and user.most_surprising(1)
