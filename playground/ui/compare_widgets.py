"""Compare: 2 to 4 panes side by side, streamed together, then a summary, logprobs, a token
diff and a Repeat check.

How streaming works: `Run all` starts a `playground.repeat.Batch` (plain worker threads that
only touch plain Python objects). Each pane's output is a `@st.fragment(parallel=True)` that
polls the batch and redraws its own text, so the panes fill at the same time; when the batch is
done, the first fragment to notice triggers one full rerun that shows the results. `Stop
generating` sets the batch's cancel event: every stream stops at once and keeps its partial
text. The worker threads save every run to the run store, so a run is kept even when the page
is left mid-stream. No Streamlit call is made from a worker thread.

Session state (keys start with "cmp."): "cmp.{i}.*" holds pane i's widgets, its base request
(a wire dict: every field but the messages), its own messages when unlinked, and where it came
from; "cmp.shared" is the shared conversation; "cmp.results" maps pane -> Run; "cmp.batch" and
"cmp.repeat" are the running batches. Other pages hand runs over with `send_to_compare`.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st
from pydantic import ValidationError

from playground import compare as tables
from playground import logprobs as lp
from playground import settings
from playground.endpoint import LOCAL_MODEL, Endpoint
from playground.repeat import MAX_REPEAT, Batch, RepeatSummary, summarize
from playground.runs import Run
from playground.runstore import RunStore
from playground.schema import ChatRequest, describe_error, message_text
from playground.textsafe import escape_markdown
from playground.ui import render, sidebar

MIN_PANES, MAX_PANES = 2, 4
POLL_S = 0.05  # redraw streaming text at most ~20 times a second
INCOMING = "cmp.incoming"
PARAMS = ("temperature", "top_p", "max_tokens", "seed", "logprobs", "top_logprobs")
EDIT_ROLES = ["user", "assistant", "system", "developer"]
KEEP = "session"  # widgets keep their values across page switches (persist_state)


# =============================================================================================
# State and actions (Streamlit session state; callbacks run before the page is drawn)
# =============================================================================================


def send_to_compare(run_ids: list[str]) -> None:
    """Queue stored runs for the Compare page (History calls this, then switches page)."""
    st.session_state[INCOMING] = list(run_ids)


def store() -> RunStore:
    return RunStore(settings.runs_db_path())


def _save(run: Run) -> None:
    # Called in a worker thread: a store of its own (SQLite connections stay in their thread).
    RunStore(settings.runs_db_path()).save(run)


def endpoints() -> dict[str, Endpoint]:
    """The endpoints the sidebar offers (the custom one when it is chosen there), by name."""
    named = {endpoint.name: endpoint for endpoint in sidebar.configured()}
    current = sidebar.current_endpoint()
    named.setdefault(current.name, current)
    return named


def default_endpoint_name() -> str:
    return sidebar.current_endpoint().name


def default_model() -> str:
    try:
        return sidebar.current_model() or LOCAL_MODEL
    except Exception:
        return LOCAL_MODEL


def prices() -> tables.Prices:
    try:
        return settings.price_table(sidebar.secrets())
    except Exception:
        return {}


def batch() -> Batch | None:
    return st.session_state.get("cmp.batch")


def repeat_batch() -> Batch | None:
    return st.session_state.get("cmp.repeat")


def running() -> bool:
    return batch() is not None or repeat_batch() is not None


def harvest() -> None:
    """Move finished batches' runs into the page state (called at the top of every page run)."""
    current = batch()
    if current is not None and current.done:
        slots = st.session_state.pop("cmp.batch_slots", {})
        for pane_index, slot in slots.items():
            if current.runs[slot] is not None:
                st.session_state["cmp.results"][pane_index] = current.runs[slot]
        st.session_state["cmp.batch"] = None
        _report(current)
    finished = repeat_batch()
    if finished is not None and finished.done:
        st.session_state["cmp.repeat_runs"] = list(finished.runs)
        st.session_state["cmp.repeat"] = None
        _report(finished)


def _report(done: Batch) -> None:
    st.session_state.setdefault("cmp.notes", []).extend(done.errors)


def _base_body() -> dict[str, Any]:
    request = st.session_state.get("request")
    if isinstance(request, ChatRequest):
        body = request.to_wire()
    else:
        body = {"model": default_model(), "max_completion_tokens": 256}
    body.pop("messages", None)
    return body


def _shared_messages() -> list[dict[str, Any]]:
    request = st.session_state.get("request")
    if isinstance(request, ChatRequest):
        return [message.model_dump(mode="json", exclude_none=True) for message in request.messages]
    return [{"role": "user", "content": "Write a haiku about comparing things."}]


def init_state() -> None:
    state = st.session_state
    state.setdefault("cmp.n", MIN_PANES)
    state.setdefault("cmp.results", {})
    state.setdefault("cmp.batch", None)
    state.setdefault("cmp.repeat", None)
    if "cmp.shared" not in state:
        _set_messages("shared", _shared_messages())


def reload_shared() -> None:
    _set_messages("shared", _shared_messages())


def _messages_key(scope: str) -> str:
    return "cmp.shared" if scope == "shared" else f"cmp.{scope}.messages"


def _set_messages(scope: str, messages: list[dict[str, Any]]) -> None:
    """Replace a message list and give its editor fresh widgets."""
    st.session_state[_messages_key(scope)] = [dict(m) for m in messages]
    st.session_state[f"cmp.v.{scope}"] = st.session_state.get(f"cmp.v.{scope}", 0) + 1


def set_pane(i: int, body: dict[str, Any], *, messages: list[dict[str, Any]] | None, source: str,
             endpoint: str | None = None, preset: str | None = None, result: Run | None = None,
             include: bool = True) -> None:
    """Load a setup into pane i (its widgets are redrawn from it). messages=None links the pane
    to the shared conversation."""
    state, k = st.session_state, f"cmp.{i}."
    state[k + "base"] = {key: value for key, value in body.items() if key != "messages"}
    for name, value in tables.widget_values(body).items():
        state[k + name] = value
    state[k + "linked"] = messages is None
    _set_messages(str(i), messages if messages is not None else [])
    state[k + "source"] = source
    state[k + "preset"] = preset
    state[k + "include"] = include
    if endpoint is not None:
        state[k + "endpoint"] = endpoint
    results = state.setdefault("cmp.results", {})
    if result is not None:
        results[i] = result
    else:
        results.pop(i, None)


def ensure_pane(i: int) -> None:
    if f"cmp.{i}.base" not in st.session_state:
        reset_pane(i)


def reset_pane(i: int) -> None:
    """The shared setup: the Playground's request (its model the sidebar's), the sidebar's endpoint."""
    set_pane(i, {**_base_body(), "model": default_model()}, messages=None, source="Shared setup",
             endpoint=default_endpoint_name())


def on_link_change(i: int) -> None:
    """Unlinking copies the shared conversation into the pane, to be edited there."""
    if not st.session_state[f"cmp.{i}.linked"] and not st.session_state.get(_messages_key(str(i))):
        _set_messages(str(i), st.session_state["cmp.shared"])


def pane_values(i: int) -> dict[str, Any]:
    return {name: st.session_state.get(f"cmp.{i}.{name}") for name in ("model", *PARAMS)}


def pane_messages(i: int) -> list[dict[str, Any]]:
    linked = st.session_state.get(f"cmp.{i}.linked", True)
    return st.session_state["cmp.shared"] if linked else st.session_state.get(_messages_key(str(i)), [])


def pane_request(i: int) -> tuple[ChatRequest | None, list[str]]:
    try:
        request = tables.build_request(st.session_state[f"cmp.{i}.base"], pane_messages(i), pane_values(i))
    except ValidationError as error:
        return None, describe_error(error)
    if not any(message_text(m).strip() for m in request.messages if m.role == "user"):
        return request, ["Write a user message first."]
    return request, []


def pane_label(i: int, run: Run | None = None) -> str:
    model = (run.request.model if run is not None else st.session_state.get(f"cmp.{i}.model")) or "?"
    return f"Pane {i + 1} · {model}"


def _prepare(panes: list[int]) -> tuple[list[tuple[Endpoint, ChatRequest]], list[str | None], list[str]]:
    named = endpoints()
    items, presets, problems = [], [], []
    for i in panes:
        request, errors = pane_request(i)
        endpoint = named.get(st.session_state.get(f"cmp.{i}.endpoint") or "")
        if endpoint is None:
            errors = [*errors, "choose an endpoint"]
        if errors or request is None:
            problems.extend(f"Pane {i + 1}: {error}" for error in errors)
            continue
        items.append((endpoint, request))
        presets.append(st.session_state.get(f"cmp.{i}.preset"))
    return items, presets, problems


def run_all() -> None:
    panes = [i for i in range(st.session_state["cmp.n"]) if st.session_state.get(f"cmp.{i}.include", True)]
    if not panes:
        st.session_state["cmp.errors"] = ["Tick 'Include in Run all' in at least one pane."]
        return
    items, presets, problems = _prepare(panes)
    if problems:
        st.session_state["cmp.errors"] = problems
        return
    for i in panes:
        st.session_state["cmp.results"].pop(i, None)
    st.session_state["cmp.batch_slots"] = {i: slot for slot, i in enumerate(panes)}
    st.session_state["cmp.batch"] = Batch(items, preset=presets, on_finish=_save).start()


def start_repeat() -> None:
    i = st.session_state.get("cmp.repeat_pane", 0)
    items, presets, problems = _prepare([i])
    if problems:
        st.session_state["cmp.errors"] = problems
        return
    k = max(2, min(int(st.session_state.get("cmp.repeat_k") or 5), MAX_REPEAT))
    endpoint, request = items[0]
    st.session_state["cmp.repeat_runs"] = None
    st.session_state["cmp.repeat_seeded"] = request.seed is not None
    st.session_state["cmp.repeat"] = Batch([(endpoint, request)] * k, concurrency=min(k, 4),
                                           preset=presets[0], on_finish=_save).start()


def stop_all() -> None:
    for current in (batch(), repeat_batch()):
        if current is not None:
            current.cancel()


def preset_names() -> list[str]:
    try:
        from playground.presets import PresetStore

        return PresetStore().names()
    except Exception:
        return []


def load_preset_into(i: int) -> None:
    from playground.presets import MissingVariableError, PresetStore, fill_variables

    name = st.session_state.get(f"cmp.{i}.preset_pick")
    try:
        preset = PresetStore().load(name)
        request = fill_variables(preset.request, preset.defaults())
    except MissingVariableError as error:
        st.session_state["cmp.errors"] = [f"Preset {name!r} needs values for {error}: fill them in the Playground "
                                          "(Load preset there), then reload the shared conversation here."]
        return
    except Exception as error:
        st.session_state["cmp.errors"] = [f"Could not load preset {name!r}: {error}"]
        return
    body = request.to_wire()
    set_pane(i, body, messages=body["messages"], source=f"Preset: {preset.name}", preset=preset.name)


def recent_runs(limit: int = 30) -> dict[str, str]:
    try:
        summaries = store().list(limit=limit)
    except Exception:
        return {}
    return {s.id: f"{s.started_at:%Y-%m-%d %H:%M} · {s.model} · {(s.text_preview or '')[:40]}" for s in summaries}


def load_run_into(i: int, run_id: str | None = None) -> bool:
    run_id = run_id or st.session_state.get(f"cmp.{i}.run_pick")
    run = store().get(run_id) if run_id else None
    if run is None:
        st.session_state["cmp.errors"] = [f"Run {run_id} is no longer in the history."]
        return False
    body = run.request.to_wire()
    named = endpoints()
    endpoint = run.endpoint if run.endpoint in named else default_endpoint_name()
    set_pane(i, body, messages=body["messages"], source=f"Past run {run.id[:8]} ({run.started_at:%Y-%m-%d %H:%M})",
             endpoint=endpoint, preset=run.preset, result=run, include=False)
    if run.endpoint not in named:
        st.session_state.setdefault("cmp.notes", []).append(
            f"Pane {i + 1}: endpoint {run.endpoint!r} of the past run is not configured now; "
            f"a rerun goes to {endpoint!r}.")
    return True


def take_incoming() -> None:
    """Load runs sent from History: into panes without a result first, adding panes up to 4."""
    run_ids = st.session_state.pop(INCOMING, None)
    if not run_ids or running():
        return
    free = [i for i in range(st.session_state["cmp.n"]) if i not in st.session_state["cmp.results"]]
    for run_id in run_ids[:MAX_PANES]:
        if not free and st.session_state["cmp.n"] < MAX_PANES:
            st.session_state["cmp.n"] += 1
            free.append(st.session_state["cmp.n"] - 1)
        target = free.pop(0) if free else MAX_PANES - 1
        load_run_into(target, run_id)


# =============================================================================================
# Drawing
# =============================================================================================


def compare_page() -> None:
    init_state()
    harvest()
    take_incoming()
    st.title("Compare")
    st.caption("One conversation through 2 to 4 setups side by side: text, usage, latency, logprobs.")
    shared_conversation()
    controls()
    panes = list(range(st.session_state["cmp.n"]))
    for i, column in zip(panes, st.columns(len(panes), gap="medium")):
        with column:
            pane(i)
    results = {i: run for i, run in sorted(st.session_state["cmp.results"].items()) if i in panes}
    st.divider()
    st.subheader("Summary")
    with st.container():
        if batch() is not None:
            replace_stale()
            st.caption("Streaming... the table appears when every pane has finished.")
        else:
            with st.container():
                summary(results)
                if results:
                    logprob_section(results)
                    diff_section(results)
    repeat_section(panes)


def replace_stale() -> None:
    """Put an element where a finished view's block was, so the old view goes at once.

    A page run that starts parallel fragments ends only when they do, and Streamlit keeps the
    previous run's elements on screen (faded) until the run ends: a pane would show its old
    answer under the new stream. An element in the old block's place drops the block."""
    st.empty()


def messages_editor(scope: str, disabled: bool = False) -> None:
    """Role and text per message; add and delete. Content that is not one text (several parts,
    tool calls) is kept as it is and shown read-only."""
    key = _messages_key(scope)
    messages: list[dict[str, Any]] = st.session_state[key]
    version = st.session_state.get(f"cmp.v.{scope}", 0)
    for j, message in enumerate(messages):
        prefix = f"cmp.m.{scope}.{version}.{j}"
        role_col, text_col, delete_col = st.columns([2, 8, 1], vertical_alignment="top")
        roles = EDIT_ROLES if message.get("role") in EDIT_ROLES else [message.get("role"), *EDIT_ROLES]
        st.session_state.setdefault(prefix + ".role", message.get("role", "user"))
        message["role"] = role_col.selectbox("Role", roles, key=prefix + ".role", label_visibility="collapsed",
                                             disabled=disabled)
        content = message.get("content")
        if content is None or isinstance(content, str):
            st.session_state.setdefault(prefix + ".text", content or "")
            message["content"] = text_col.text_area("Text", key=prefix + ".text", label_visibility="collapsed",
                                                    height=90, disabled=disabled, placeholder="Message text")
        else:
            text_col.caption("Content with several parts: kept as it is (edit it in the Playground's JSON view).")
        delete_col.button(":material/delete:", key=prefix + ".del", help="Delete this message", disabled=disabled,
                          on_click=_delete_message, args=(scope, j))
    st.button("Add message", key=f"cmp.m.{scope}.{version}.add", on_click=_add_message, args=(scope,),
              disabled=disabled, icon=":material/add:")


def _delete_message(scope: str, j: int) -> None:
    messages = list(st.session_state[_messages_key(scope)])
    del messages[j]
    _set_messages(scope, messages)


def _add_message(scope: str) -> None:
    messages = list(st.session_state[_messages_key(scope)])
    last = messages[-1]["role"] if messages else "assistant"
    messages.append({"role": "assistant" if last == "user" else "user", "content": ""})
    _set_messages(scope, messages)


def shared_conversation() -> None:
    empty = not any(m.get("role") == "user" and isinstance(m.get("content"), str) and m["content"].strip()
                    for m in st.session_state["cmp.shared"])
    with st.expander("Shared conversation", expanded=empty):
        st.caption("Every linked pane sends these messages. Unlink a pane to give it its own.")
        messages_editor("shared", disabled=running())
        st.button("Reload from the Playground", key="cmp.reload_shared", on_click=reload_shared, disabled=running(),
                  help="Replace the shared conversation with the Playground's current messages.")


def controls() -> None:
    busy = running()
    left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
    left.number_input("Panes", MIN_PANES, MAX_PANES, step=1, key="cmp.n", disabled=busy, persist_state=KEEP)
    middle.button("Run all", key="cmp.run_all", type="primary", disabled=busy, on_click=run_all, width="stretch")
    if busy:
        right.button("Stop generating", key="cmp.stop", on_click=stop_all, width="stretch")
    for message in st.session_state.pop("cmp.errors", []):
        st.error(escape_markdown(message))
    for message in st.session_state.pop("cmp.notes", []):
        st.warning(escape_markdown(message))


def pane(i: int) -> None:
    ensure_pane(i)
    busy = batch() is not None
    st.subheader(f"Pane {i + 1}")
    st.caption(escape_markdown(st.session_state[f"cmp.{i}.source"]))
    result = st.session_state["cmp.results"].get(i)
    with st.expander("Setup", expanded=result is None and not busy):
        pane_setup(i, disabled=busy)
    _, problems = pane_request(i)
    for problem in problems:
        st.caption(f":red[{escape_markdown(problem)}]")
    slots = st.session_state.get("cmp.batch_slots", {})
    current = batch()
    with st.container():
        if current is not None and i in slots:
            replace_stale()
            live_output(current, slots[i])
        elif result is None:
            st.caption("No run yet: press Run all.")
        else:
            with st.container():
                pane_result(i, result)


def pane_result(i: int, run: Run) -> None:
    """The answer at a glance (a token heatmap when there are logprobs), one line of numbers,
    and everything else (usage, every choice, tool calls, the token inspector) under Details."""
    render.show_error(run)
    render.show_status(run)
    choice = run.choices[0] if run.choices else None
    if choice is not None and choice.logprobs:
        st.html(render.token_heatmap_html(choice.logprobs))
    elif choice is not None and (choice.text or not choice.tool_calls):
        st.html(render.answer_html(choice.text))
    st.caption(escape_markdown(tables.stats_line(run)))
    with st.expander("Details"):
        render.show_run(run, key=f"cmp{i}_{run.id[:8]}")


def pane_setup(i: int, disabled: bool) -> None:
    k = f"cmp.{i}."
    names = list(endpoints())
    if st.session_state.get(k + "endpoint") not in names and names:
        st.session_state[k + "endpoint"] = default_endpoint_name() if default_endpoint_name() in names else names[0]
    st.selectbox("Endpoint", names, key=k + "endpoint", disabled=disabled, persist_state=KEEP)
    st.text_input("Model", key=k + "model", disabled=disabled, persist_state=KEEP)
    a, b = st.columns(2)
    a.number_input("Temperature", 0.0, 2.0, value=None, step=0.1, key=k + "temperature", disabled=disabled,
                   placeholder="default", persist_state=KEEP)
    b.number_input("top_p", 0.0, 1.0, value=None, step=0.05, key=k + "top_p", disabled=disabled, placeholder="default",
                   persist_state=KEEP)
    a.number_input("Max tokens", 1, None, value=None, step=1, key=k + "max_tokens", disabled=disabled,
                   placeholder="default", persist_state=KEEP)
    b.number_input("Seed", None, None, value=None, step=1, key=k + "seed", disabled=disabled, placeholder="none",
                   persist_state=KEEP)
    a.checkbox("Logprobs", key=k + "logprobs", disabled=disabled, persist_state=KEEP)
    b.number_input("top_logprobs", 0, 20, value=None, step=1, key=k + "top_logprobs", placeholder="0",
                   disabled=disabled or not st.session_state.get(k + "logprobs"), persist_state=KEEP)
    st.checkbox("Include in Run all", key=k + "include", disabled=disabled, persist_state=KEEP)
    st.toggle("Use the shared conversation", key=k + "linked", disabled=disabled, on_change=on_link_change, args=(i,),
              persist_state=KEEP)
    if not st.session_state[k + "linked"]:
        st.caption("This pane's own messages:")
        messages_editor(str(i), disabled=disabled)
    with st.popover("Load a preset or a past run", disabled=disabled, width="stretch"):
        names = preset_names()
        if names:
            st.selectbox("Preset", names, key=k + "preset_pick")
            st.button("Load preset", key=k + "load_preset", on_click=load_preset_into, args=(i,))
        else:
            st.caption("No presets found.")
        recent = recent_runs()
        if recent:
            st.selectbox("Past run", list(recent), format_func=recent.get, key=k + "run_pick")
            st.button("Load past run", key=k + "load_run", on_click=load_run_into, args=(i,))
        else:
            st.caption("No past runs yet.")
        st.button("Reset to the shared setup", key=k + "reset", on_click=reset_pane, args=(i,))


@st.fragment(parallel=True)
def live_output(current: Batch, slot: int) -> None:
    """Redraw one slot's text while it streams, in parallel with the other panes."""
    box = st.empty()
    while not current.finished(slot):
        box.html(render.answer_html(current.snapshot(slot), streaming=True))
        time.sleep(POLL_S)
    run = current.runs[slot]
    box.html(render.answer_html(run.text if run is not None else ""))
    if current.claim_final_redraw():
        st.rerun()


def summary(results: dict[int, Run]) -> None:
    if not results:
        st.caption("Run the panes to see tokens, latency and cost side by side.")
        return
    labels = {i: pane_label(i, run) for i, run in results.items()}
    price_list = prices()
    st.dataframe(tables.summary_frame([(labels[i], run) for i, run in results.items()], price_list), hide_index=True,
                 column_config={"TTFT (s)": st.column_config.NumberColumn(format="%.3f"),
                                "total (s)": st.column_config.NumberColumn(format="%.3f"),
                                "tokens/s": st.column_config.NumberColumn(format="%.1f"),
                                "cost ($)": st.column_config.NumberColumn(format="%.6f")})
    if not price_list:
        st.caption("No prices: add a [prices] table to .streamlit/secrets.toml "
                   "(model = [input, output], dollars per million tokens) to see each run's cost.")
    if len(results) < 2:
        return
    options = [None, *results]
    if st.session_state.get("cmp.baseline") not in options:
        st.session_state["cmp.baseline"] = None
    baseline = st.selectbox("Baseline", options, key="cmp.baseline",
                            format_func=lambda i: "(none)" if i is None else labels[i],
                            help="Pin one run: the others show their differences from it.", persist_state=KEEP)
    if baseline is not None:
        others = [(labels[i], run) for i, run in results.items() if i != baseline]
        st.caption(f"Differences from the baseline, {escape_markdown(labels[baseline])}:")
        st.dataframe(tables.delta_frame(results[baseline], others, price_list), hide_index=True)


def logprob_section(results: dict[int, Run]) -> None:
    with_lp = {i: run for i, run in results.items() if run.choices and run.choices[0].logprobs}
    st.subheader("Logprobs")
    if not with_lp:
        st.caption("Tick Logprobs in a pane's setup and run again to see token tables side by side.")
        return
    series = {pane_label(i, run): run.choices[0].logprobs for i, run in with_lp.items()}
    st.line_chart(lp.probability_chart_data(series), x_label="token position", y_label="chosen-token probability")
    for (i, run), column in zip(with_lp.items(), st.columns(len(with_lp))):
        with column:
            tokens = run.choices[0].logprobs
            perplexity = lp.perplexity(tokens)
            st.caption(escape_markdown(pane_label(i, run))
                       + (f" · perplexity {perplexity:.3g}" if perplexity is not None else ""))
            table = lp.token_table(tokens)
            table["token"] = table["token"].map(lp.visible_token)
            st.dataframe(table, hide_index=True, height=320, key=f"cmp.lp.{i}",
                         column_config={"probability": st.column_config.ProgressColumn(
                             "probability", min_value=0.0, max_value=1.0, format="percent"),
                             "logprob": st.column_config.NumberColumn(format="%.3f"),
                             "entropy": st.column_config.NumberColumn("entropy (bits)", format="%.2f")})


def diff_section(results: dict[int, Run]) -> None:
    if len(results) < 2:
        return
    st.subheader("Token diff")
    options = list(results)
    labels = {i: pane_label(i, results[i]) for i in options}
    for name, default in (("cmp.diff_a", options[0]), ("cmp.diff_b", options[1])):
        if st.session_state.get(name) not in options:
            st.session_state[name] = default
    left, right = st.columns(2)
    a = left.selectbox("Run A", options, key="cmp.diff_a", format_func=labels.get, persist_state=KEEP)
    b = right.selectbox("Run B", options, key="cmp.diff_b", format_func=labels.get, persist_state=KEEP)
    if a == b:
        st.caption("Pick two different runs.")
        return
    run_a, run_b = results[a], results[b]
    if not (run_a.choices and run_a.choices[0].logprobs and run_b.choices and run_b.choices[0].logprobs):
        where = tables.divergence(run_a, run_b)
        st.info("The token diff needs logprobs on both runs: tick Logprobs in both panes and run again. "
                + ("Their texts are identical." if where == "identical" else f"Their texts first differ at {where}."))
        return
    diff = tables.token_diff(run_a, run_b)
    for line in tables.diff_headlines(diff, labels[a], labels[b]):
        st.markdown(line)
    shown = diff[diff["op"] != "equal"] if st.checkbox("Only rows that differ", key="cmp.diff_only") else diff
    shown = shown.assign(token_a=shown["token_a"].map(_visible), token_b=shown["token_b"].map(_visible))
    st.dataframe(shown, hide_index=True, key="cmp.diff_table",
                 column_config={"logprob_a": st.column_config.NumberColumn(format="%.3f"),
                                "logprob_b": st.column_config.NumberColumn(format="%.3f"),
                                "delta": st.column_config.NumberColumn("Δ logprob (B − A)", format="%.3f"),
                                "topk_overlap": st.column_config.NumberColumn("top-k overlap", format="%.2f")})


def _visible(token: Any) -> Any:
    return lp.visible_token(token) if isinstance(token, str) else token


def repeat_section(panes: list[int]) -> None:
    st.divider()
    st.subheader("Repeat")
    st.caption("Send one pane's request k times: distinct answers with counts, the exact-match rate, where "
               "the samples fork and each sample's total logprob. With a fixed seed it is a determinism check.")
    busy = running()
    if st.session_state.get("cmp.repeat_pane") not in panes:
        st.session_state["cmp.repeat_pane"] = panes[0]
    st.session_state.setdefault("cmp.repeat_k", 5)
    left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
    labels = {i: pane_label(i) for i in panes}
    left.selectbox("Pane", panes, key="cmp.repeat_pane", format_func=labels.get, disabled=busy,
                  persist_state=KEEP)
    middle.number_input("k", 2, MAX_REPEAT, step=1, key="cmp.repeat_k", disabled=busy, persist_state=KEEP)
    right.button("Repeat", key="cmp.repeat_go", on_click=start_repeat, disabled=busy, width="stretch")
    current = repeat_batch()
    with st.container():
        if current is not None:
            replace_stale()
            live_repeat(current)
        elif runs := st.session_state.get("cmp.repeat_runs"):
            with st.container():
                show_repeat(summarize(runs), st.session_state.get("cmp.repeat_seeded", False))


@st.fragment(parallel=True)
def live_repeat(current: Batch) -> None:
    bar = st.progress(0.0, text="Starting...")
    while not current.done:
        done, total = current.finished_count, len(current)
        bar.progress(done / total, text=f"{done} of {total} samples done")
        time.sleep(POLL_S * 2)
    bar.progress(1.0, text=f"{len(current)} of {len(current)} samples done")
    if current.claim_final_redraw():
        st.rerun()


def show_repeat(result: RepeatSummary, seeded: bool) -> None:
    rate = result.exact_match_rate
    a, b, c, d = st.columns(4)
    a.metric("Samples", result.k)
    b.metric("Distinct answers", result.distinct)
    c.metric("Exact-match rate", "—" if rate is None else f"{rate:.0%}",
             help="Share of samples identical to the most common answer.")
    d.metric("Deterministic", "yes" if result.deterministic else "no")
    if result.failed or result.skipped:
        st.caption(f"{result.failed} failed and {result.skipped} never ran (stopped); they are left out above.")
    for note in result.notes:
        st.caption(note)
    if not seeded:
        st.caption("No seed was set, so different samples are expected: set a seed for a determinism check.")
    unit = "token" if result.server_tokens else "word"
    fork = result.fork
    if fork is None and result.k > 1:
        st.markdown(f"**No fork**: every sample is the same, {unit} for {unit}.")
    elif fork is not None:
        branches = ", ".join(f"“{escape_markdown(lp.visible_token(t))}” ×{n}" for t, n in fork.branches.items())
        prefix = escape_markdown(("..." + fork.prefix[-80:]) if len(fork.prefix) > 80 else fork.prefix) or "(nothing)"
        st.markdown(f"**The samples fork at {unit} {fork.position}.** They share: {prefix}  \nthen go: {branches}")
        if not result.server_tokens:
            st.caption("Without logprobs the answers are split into words and punctuation, not the model's tokens.")
    st.dataframe(tables.groups_frame(result), hide_index=True, key="cmp.repeat_groups",
                 column_config={"share": st.column_config.NumberColumn(format="percent")})
    st.dataframe(tables.samples_frame(result), hide_index=True, key="cmp.repeat_samples",
                 column_config={"total logprob": st.column_config.NumberColumn(format="%.3f"),
                                "TTFT (s)": st.column_config.NumberColumn(format="%.3f"),
                                "total (s)": st.column_config.NumberColumn(format="%.3f")})
    for n, group in enumerate(result.groups, 1):
        with st.expander(f"Answer {n}: {group.count} of {result.k}"):
            st.html(render.answer_html(group.text))
