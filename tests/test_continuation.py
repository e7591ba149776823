"""Branch from an alternative (playground.runs.continuation): the request that continues an
answer with another token, and the capability probe against a scripted server both ways."""

from __future__ import annotations

import pytest

from playground.client.run import BranchOrigin, ChoiceResult, Run
from playground.client.schema import ChatRequest, TokenLogprob, TopLogprob
from playground.runs import continuation
from playground.runs.store import RunStore
from tests.scripted_server import Reply, ScriptedServer
from tests.support import chat_requests

SAKURA = "桜".encode()


def entry(text: str, raw: bytes | None = None, alts: tuple = ()) -> TokenLogprob:
    raw = raw if raw is not None else text.encode()
    return TokenLogprob(token=text, logprob=-0.2, bytes=list(raw),
                        top_logprobs=[TopLogprob(token=t, logprob=-0.2 - n, bytes=list(t.encode()))
                                      for n, t in enumerate(alts)])


def completion(text: str, first_alternatives: tuple[tuple[str, float], ...] = ()) -> Reply:
    top = [{"token": t, "logprob": v, "bytes": None} for t, v in first_alternatives]
    logprobs = {"content": [{"token": text[:2], "logprob": -0.5, "bytes": None, "top_logprobs": top}]}
    return Reply.json(200, {"id": "c", "object": "chat.completion", "created": 0, "model": "scripted/model",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": "length", "logprobs": logprobs}],
                            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}})


def test_branch_request_ends_with_the_answer_up_to_the_alternative():
    tokens = [entry("Sakura "), entry(r"\xe6\xa1", SAKURA[:2]), entry(r"\x9c", SAKURA[2:]),
              entry(" is", alts=(" is", " was")), entry(" pink", alts=(" pink", " red", " white"))]
    run = Run(request=ChatRequest.from_wire({"model": "m", "n": 2, "temperature": 0.5, "stream": True,
                                             "messages": [{"role": "user", "content": "Sakura?"}]}),
              choices=[ChoiceResult(index=0, text="Sakura 桜 is pink", logprobs=tokens)])
    request, origin = continuation.branch_request(run, position=4, rank=2)
    body = request.to_wire()
    assert body["messages"] == [{"role": "user", "content": "Sakura?"},
                                {"role": "assistant", "content": "Sakura 桜 is white"}]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["temperature"] == 0.5 and body["stream"] is True and "n" not in body
    assert origin.model_dump() == {"run_id": run.id, "choice": 0, "position": 4, "token": " white"}
    # the origin is kept in the run's own record
    branched = Run(request=request, branched_from=origin)
    assert Run.model_validate_json(branched.model_dump_json()).branched_from == origin


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted


@pytest.mark.parametrize("reply, offered, why", [
    (completion(" 7, 8"), True, ""),
    (completion(" seven", ((" seven", -0.5), (" 7", -1.0))), True, ""),  # it expected 7 (37%)
    (completion("Sure! 1, 2, 3", (("Sure", -0.2), (" 7", -4.0))), False, "does not continue a final assistant"),
    (Reply.error(400, {"detail": "Unknown field continue_final_message"}), False, "Unknown field"),
])
def test_the_probe_asks_once_per_endpoint_and_model(server, reply, offered, why):
    continuation.forget()
    server.add(reply)
    endpoint = server.endpoint()
    assert continuation.known(endpoint, "m") is None
    found = continuation.probe(endpoint, "m")
    assert found.offered is offered and why in found.reason
    sent = chat_requests(server)[-1].json
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False
    assert sent["logprobs"] is True and sent["top_logprobs"] == 5
    assert sent["messages"][-1] == {"role": "assistant", "content": continuation.PROBE_PREFIX}
    # remembered: no second request
    assert continuation.probe(endpoint, "m") == found == continuation.known(endpoint, "m")
    assert len(chat_requests(server)) == 1
    continuation.forget()


def test_a_runs_branches_are_found_in_the_store(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    original = Run(request=ChatRequest.from_wire({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}))
    other = Run(request=original.request)
    store.save(original)
    store.save(other)
    for position, token, parent in ((4, " red", original), (2, " blue", original), (1, " x", other)):
        branch = Run(request=original.request, branched_from=BranchOrigin(run_id=parent.id, position=position,
                                                                          token=token))
        store.save(branch, source=continuation.BRANCH_SOURCE)
    store.save(Run(request=original.request), source="Playground")  # not a branch
    found = continuation.branches_of(store, original.id)
    assert [(run.branched_from.position, run.branched_from.token) for run in found] == [(4, " red"), (2, " blue")]
    assert continuation.branches_of(store, "nobody") == []
