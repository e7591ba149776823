"""Branch from an alternative: continue an answer with another token than the one the model
chose. The new request is the old conversation plus an assistant message holding the answer up to
the branch point and the chosen token, which the server is asked to continue rather than answer
(vLLM's `continue_final_message: true, add_generation_prompt: false`, which the sandbox honours).

Not every server honours those fields: `probe` asks once per endpoint and model with one tiny
request, and says why when the answer shows the server did not continue the message."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from playground.analysis import logprobs as lp
from playground.client.client import ChatClient
from playground.client.endpoint import Endpoint
from playground.client.run import BranchOrigin, Run
from playground.client.schema import ChatRequest
from playground.runs.store import RunStore

CONTINUE_FIELDS = {"continue_final_message": True, "add_generation_prompt": False}
PROBE_PREFIX = "1, 2, 3, 4, 5, 6,"  # an answer only a continuation goes on with " 7"
PROBE_ANSWER = "7"
BRANCH_SOURCE = "branch"  # the run store's source of a branched run (runs.store.SOURCES)


def branch_request(run: Run, position: int, rank: int, choice: int = 0) -> tuple[ChatRequest, BranchOrigin]:
    """The request that continues `run`'s answer (choice `choice`) from token `position` with
    that token's alternative number `rank` (0-based, the server's order) in its place."""
    tokens = run.choices[choice].logprobs
    alternative = tokens[position].top_logprobs[rank]
    raw = b"".join(lp.token_bytes(token) for token in tokens[:position]) + lp.token_bytes(alternative)
    prefix = raw.decode("utf-8", errors="replace")
    body = run.request.to_wire()
    body["messages"] = [*body["messages"], {"role": "assistant", "content": prefix}]
    body.update(CONTINUE_FIELDS)
    body.pop("n", None)  # one continuation
    return ChatRequest.from_wire(body), BranchOrigin(run_id=run.id, choice=choice, position=position,
                                                     token=lp.token_text(alternative))


@dataclass(frozen=True)
class Capability:
    offered: bool
    reason: str = ""


_PROBED: dict[tuple[str, str, str], Capability] = {}
_LOCK = threading.Lock()


def known(endpoint: Endpoint, model: str) -> Capability | None:
    """What the probe found for this endpoint and model, None before it was asked."""
    with _LOCK:
        return _PROBED.get(_key(endpoint, model))


def _key(endpoint: Endpoint, model: str) -> tuple[str, str, str]:
    return endpoint.name, endpoint.base_url, model


def probe(endpoint: Endpoint, model: str) -> Capability:
    """Does this server continue a final assistant message? One tiny request (greedy, 3 tokens,
    with logprobs: a branch needs them anyway), asked once per endpoint and model and remembered:
    a server that continues "1, 2, ..., 6," answers with 7 (or expects it first); one that ignores
    the fields starts a new answer; one that refuses them says so."""
    found = known(endpoint, model)
    if found is not None:
        return found
    request = ChatRequest.from_wire({
        "model": model, "temperature": 0, endpoint.token_limit_field: 3, **CONTINUE_FIELDS,
        "logprobs": True, "top_logprobs": 5,
        "messages": [{"role": "user", "content": "Count from 1 to 10."},
                     {"role": "assistant", "content": PROBE_PREFIX}]})
    with ChatClient(endpoint, max_retries=0) as client:
        run = client.run(request)
    found = _judge(run)
    with _LOCK:
        _PROBED[_key(endpoint, model)] = found
    return found


def _judge(run: Run) -> Capability:
    if run.error is not None:
        return Capability(False, f"Not offered: {run.endpoint or 'this server'} refused continue_final_message "
                                 f"({run.error.status_code or run.error.kind}: {run.error.message[:200]}).")
    if run.text.strip().startswith(PROBE_ANSWER) or _expected_next(run):
        return Capability(True)
    return Capability(False, "Not offered: this server does not continue a final assistant message (asked with "
                             f"continue_final_message, it answered {run.text[:40]!r} instead of going on with "
                             f"{PROBE_ANSWER!r}).")


def _expected_next(run: Run) -> bool:
    """A small model may not write 7 itself; a continuing one still expects it first (a
    fresh answer to "Count from 1 to 10." expects "1" or a word): 7 among the first token's
    top 5 with at least 20%."""
    tokens = run.choices[0].logprobs if run.choices else []
    if not tokens:
        return False
    return any(alt.token.strip().startswith(PROBE_ANSWER) and alt.logprob > -1.6  # e^-1.6 = 20%
               for alt in tokens[0].top_logprobs)


def forget() -> None:
    """Drop what the probes found (a server was restarted or changed)."""
    with _LOCK:
        _PROBED.clear()


def branches_of(store: RunStore, run_id: str, limit: int = 200) -> list[Run]:
    """The runs branched from `run_id`, oldest first: among the latest `limit` runs saved as
    branches (their source is BRANCH_SOURCE; the origin is read from each one's record)."""
    found = []
    for summary in store.list(source=BRANCH_SOURCE, limit=limit):
        run = store.get(summary.id)
        if run is not None and run.branched_from is not None and run.branched_from.run_id == run_id:
            found.append(run)
    return sorted(found, key=lambda run: run.started_at)
