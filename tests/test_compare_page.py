"""AppTest of the Compare page (through app.py: shell, sidebar, navigation) against scripted
loopback servers.

Two endpoints ([endpoints.A] and [endpoints.B] in the test's secrets) point at one
ScriptedServer on two paths, so each pane's reply is fixed however the streams interleave.
Runs are saved through RunStore into a temporary PLAYGROUND_DATA_DIR.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

import playground.ui.compare.page  # noqa: F401  (import the package before pages/ lands on sys.path)
from playground.client.run import ChoiceResult, Run
from playground.client.schema import ChatRequest, TokenLogprob, Usage
from playground.runs.store import RunStore
from playground.settings import runs_db_path
from playground.ui.playground import state as playground_state
from tests.apptest_support import (
    app_test,
    frame,
    listing_endpoint,
    open_groups,
    sandbox_stand_in,
    send_stale,
    texts,
    widget,
    widget_value,
)
from tests.scripted_server import Reply, ScriptedServer, make_chunk

PATH_A, PATH_B = "/a/v4/beta/chat/completions", "/b/v4/beta/chat/completions"


def lp_chunk(token: str, p: float, alternatives: dict[str, float] | None = None, model: str = "scripted/model") -> dict:
    alts = alternatives or {token: p}
    top = [{"token": t, "logprob": math.log(q), "bytes": list(t.encode())} for t, q in alts.items()]
    entry = {"token": token, "logprob": math.log(p), "bytes": list(token.encode()), "top_logprobs": top}
    return make_chunk(token, logprobs=[entry], model=model)


def lp_reply(tokens: list[tuple[str, float]], model: str = "scripted/model", delay_s: float = 0.0) -> Reply:
    events = [make_chunk("", role="assistant", model=model)]
    events += [lp_chunk(token, p, {token: p, "zzz": (1 - p) / 2}, model=model) for token, p in tokens]
    events.append(make_chunk(finish_reason="stop", model=model))
    usage = {"prompt_tokens": 7, "completion_tokens": len(tokens), "total_tokens": 7 + len(tokens)}
    events.append(make_chunk(choices=[], usage=usage, model=model))
    return Reply.sse(events, delay_s=delay_s)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with sandbox_stand_in(tmp_path, monkeypatch) as scripted:
        yield scripted


def app(server: ScriptedServer, prices: dict | None = None, request: ChatRequest | None = None,
        variables: dict[str, str] | None = None) -> AppTest:
    """`variables`: the values in the Playground's Variables panel."""
    at = app_test("compare.py")
    if variables is not None:
        at.session_state[playground_state.VARIABLE_VALUES] = variables
    at.secrets["endpoints"] = {
        "A": {"base_url": server.base_url, "chat_path": PATH_A, "auth": "x-api-key"},
        "B": {"base_url": server.base_url, "chat_path": PATH_B, "auth": "x-api-key"},
    }
    if prices:
        at.secrets["prices"] = prices
    at.session_state["endpoint_name"] = "A"
    at.session_state["model"] = "scripted/model"
    at.session_state["request"] = request or ChatRequest(
        model="scripted/model", messages=[{"role": "user", "content": "Name a colour."}], max_completion_tokens=32)
    for i in range(4):  # every pane's parameter groups open, as a user would open them
        open_groups(at, f"cmp.{i}.")
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Compare"]
    return at


def setup_panes(at: AppTest, *, logprobs: bool = False, model_b: str = "scripted/model") -> None:
    widget(at.selectbox, "cmp.0.endpoint").select("A")
    widget(at.selectbox, "cmp.1.endpoint").select("B")
    widget(at.number_input, "cmp.0.p_temperature").set_value(0.2)
    widget(at.number_input, "cmp.1.p_temperature").set_value(1.3)
    widget(at.text_input, "cmp.1.p_model").input(model_b)
    if logprobs:
        widget(at.selectbox, "cmp.0.p_logprobs").set_value(True)
        widget(at.selectbox, "cmp.1.p_logprobs").set_value(True)
        at.run()
        widget(at.number_input, "cmp.0.p_top_logprobs").set_value(2)
        widget(at.number_input, "cmp.1.p_top_logprobs").set_value(2)
    at.run()
    assert not at.exception, at.exception


def run_all(at: AppTest) -> None:
    at.button(key="cmp.run_all").click().run()
    assert not at.exception, at.exception
    # The run that follows the streams (triggered by the last pane to finish) shows the results.
    assert at.session_state["cmp.batch"] is None, "the page came back before the streams finished"


# --- tests ---------------------------------------------------------------------------------


def test_two_panes_run_together_and_fill_the_summary(server: ScriptedServer) -> None:
    server.route(PATH_A, Reply.stream_text(["Red", ".", " Warm"], delay_s=0.02))
    server.route(PATH_B, Reply.stream_text(["Blue", "."], delay_s=0.02))
    at = app(server)
    setup_panes(at)
    run_all(at)

    bodies = {r.path: r.json for r in server.requests if r.path in (PATH_A, PATH_B)}
    assert bodies[PATH_A]["temperature"] == 0.2 and bodies[PATH_B]["temperature"] == 1.3
    for body in bodies.values():  # the shared conversation, streamed with usage
        assert body["messages"] == [{"role": "user", "content": "Name a colour."}]
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        assert body["max_completion_tokens"] == 32

    summary = frame(at, "TTFT (s)")
    assert list(summary["run"]) == ["Pane 1 · scripted/model", "Pane 2 · scripted/model"]
    assert list(summary["completion tokens"]) == [3, 2]
    assert list(summary["prompt tokens"]) == [5, 5]
    assert list(summary["finish_reason"]) == ["stop", "stop"]
    assert list(summary["temperature"]) == [0.2, 1.3]
    assert all(summary["TTFT (s)"] > 0) and all(summary["latency (s)"] >= summary["TTFT (s)"])
    assert "cost ($)" not in summary.columns  # no price table given

    html = " ".join(str(h.proto.body) for h in at.get("html"))
    assert "Red. Warm" in html and "Blue." in html

    stored = RunStore(runs_db_path())
    assert stored.count() == 2
    assert {s.text_preview for s in stored.list()} == {"Red. Warm", "Blue."}


def test_baseline_shows_differences_and_cost_comes_from_the_price_table(server: ScriptedServer) -> None:
    server.route(PATH_A, Reply.stream_text(["a"] * 4))
    server.route(PATH_B, Reply.stream_text(["a"] * 2))
    at = app(server, prices={"scripted/model": [1.0, 2.0], "other/model": [10.0, 20.0]})
    setup_panes(at)
    run_all(at)
    summary = frame(at, "TTFT (s)")
    # 5 prompt tokens at $1/M, 4 and 2 completion tokens at $2/M
    assert summary["cost ($)"].tolist() == pytest.approx([13e-6, 9e-6])
    widget(at.selectbox, "cmp.baseline").select(0).run()
    deltas = frame(at, "Δ completion tokens")
    assert deltas["run"].tolist() == ["Pane 2 · scripted/model"]
    assert deltas["Δ completion tokens"].tolist() == ["-2 (-50%)"]
    assert deltas["changed fields"].tolist() == ["temperature"]
    assert deltas["same text"].tolist() == [False]
    assert deltas["diverges at"].tolist() == ["word 0"]  # no logprobs: words, and "aaaa" != "aa"
    assert deltas["Δ cost ($)"].tolist()[0].startswith("-0.000004")


def test_logprob_tables_chart_and_token_diff(server: ScriptedServer) -> None:
    server.route(PATH_A, lp_reply([("The", 0.9), (" sky", 0.8), (" is", 0.7), (" blue", 0.6)]))
    server.route(PATH_B, lp_reply([("The", 0.85), (" sky", 0.8), (" was", 0.3), (" blue", 0.5)]))
    at = app(server)
    setup_panes(at, logprobs=True)
    run_all(at)
    bodies = {r.path: r.json for r in server.requests if r.path in (PATH_A, PATH_B)}
    assert bodies[PATH_A]["logprobs"] is True and bodies[PATH_A]["top_logprobs"] == 2

    (chart,) = at.get("vega_lite_chart")  # each run's chosen-token probability along its answer
    data = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()
    _, series, value = data.columns  # Streamlit melts the frame into (x, series, y) rows
    assert data.groupby(series)[value].apply(list).to_dict() == {
        "Pane 1 · scripted/model": pytest.approx([0.9, 0.8, 0.7, 0.6]),
        "Pane 2 · scripted/model": pytest.approx([0.85, 0.8, 0.3, 0.5])}
    lines = " ".join(texts(at.markdown))
    assert "First divergence at token 2" in lines
    assert "␣is" in lines and "␣was" in lines
    assert "different tokenizers" not in lines
    diff = frame(at, "topk_overlap")
    # Token by token (one tokenizer): the rows are the models' own tokens, not bytes.
    assert diff["token_a"].tolist() == ["The", "␣sky", "␣is", "␣blue"]
    assert diff["token_b"].tolist() == ["The", "␣sky", "␣was", "␣blue"]
    assert diff["op"].tolist() == ["equal", "equal", "replace", "equal"]
    row = diff[diff["pos_a"] == 0].iloc[0]
    assert row["delta"] == pytest.approx(math.log(0.85) - math.log(0.9))

    widget(at.checkbox, "cmp.diff_only").check().run()
    only = frame(at, "topk_overlap")
    assert only["op"].tolist() == ["replace"]


def test_different_tokenizers_are_compared_per_byte(server: ScriptedServer) -> None:
    # Same text, cut into tokens differently by two models: no token matches one to one.
    server.route(PATH_A, lp_reply([("Hel", 0.9), ("lo wor", 0.8), ("ld, frie", 0.7), ("nds al", 0.6), ("l", 0.9)],
                                  model="m/one"))
    server.route(PATH_B, lp_reply([("He", 0.9), ("llo w", 0.8), ("orld,", 0.7), (" fri", 0.6), ("ends all", 0.9)],
                                  model="m/two"))
    at = app(server)
    setup_panes(at, logprobs=True, model_b="m/two")
    widget(at.text_input, "cmp.0.p_model").input("m/one").run()
    run_all(at)
    lines = " ".join(texts(at.markdown))
    assert "different tokenizers" in lines and "byte by byte" in lines
    assert "identical" in lines  # same text, byte for byte


def test_unlinked_pane_sends_its_own_messages(server: ScriptedServer) -> None:
    server.route(PATH_A, Reply.stream_text(["one"]))
    server.route(PATH_B, Reply.stream_text(["two"]))
    at = app(server)
    setup_panes(at)
    widget(at.toggle, "cmp.1.linked").set_value(False).run()
    own = [t for t in at.text_area if t.key and t.key.startswith("cmp.1.msg_text_")]
    assert [t.value for t in own] == ["Name a colour."]  # unlinking copies the shared conversation
    own[0].input("Name a number.").run()
    shared = [t for t in at.text_area if t.key and t.key.startswith("cmp.m.shared_text_")]
    shared[0].input("Name a fruit.").run()
    run_all(at)
    bodies = {r.path: r.json for r in server.requests if r.path in (PATH_A, PATH_B)}
    assert bodies[PATH_A]["messages"][0]["content"] == "Name a fruit."
    assert bodies[PATH_B]["messages"][0]["content"] == "Name a number."


def test_the_shared_conversation_is_the_playgrounds_as_sent_with_its_variables_filled(server: ScriptedServer) -> None:
    template = ChatRequest(model="scripted/model", messages=[{"role": "user", "content": "Name a {{thing}}."}])
    at = app(server, request=template, variables={"thing": "colour"})
    shared = [t for t in at.text_area if t.key and t.key.startswith("cmp.m.shared_text_")]
    assert [t.value for t in shared] == ["Name a colour."]


def test_an_error_in_one_pane_does_not_stop_the_other(server: ScriptedServer) -> None:
    server.route(PATH_A, Reply.error(404, {"detail": "model <b>nope</b> not found"}))
    server.route(PATH_B, Reply.stream_text(["fine"]))
    at = app(server)
    setup_panes(at)
    run_all(at)
    summary = frame(at, "status")
    assert summary["status"].tolist()[0] == "failed"
    assert summary["status"].tolist()[1] == "ok"
    # what the failed run never had stays empty on screen (the table's placeholder), never "None"
    assert summary["completion tokens"].isna().tolist() == [True, False]
    assert summary["finish_reason"].tolist() == ["", "stop"]
    assert summary["prompt"].tolist() == ["Name a colour.", "Name a colour."]
    table = next(df for df in at.dataframe if "TTFT (s)" in df.value.columns)
    assert table.proto.placeholder == "" and table.proto.HasField("placeholder")
    errors = texts(at.error)
    assert any("model <b>nope</b> not found" in e for e in errors)
    assert RunStore(runs_db_path()).count() == 2  # the failed run is kept too


def test_repeat_groups_samples_and_finds_the_fork(server: ScriptedServer) -> None:
    at = app(server)
    widget(at.selectbox, "cmp.0.endpoint").select("A").run()
    for text in (["The", " cat", " sat"], ["The", " cat", " ran"], ["The", " cat", " sat"]):
        server.add(lp_reply([(t, 0.5) for t in text]))
    widget(at.selectbox, "cmp.0.p_logprobs").set_value(True).run()
    widget(at.number_input, "cmp.0.p_seed").set_value(7)
    widget(at.number_input, "cmp.repeat_k").set_value(3)
    at.run()
    at.button(key="cmp.repeat_go").click().run()
    assert not at.exception, at.exception
    assert at.session_state["cmp.repeat"] is None
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == "3" and metrics["Distinct answers"] == "2"
    assert metrics["Exact-match rate"] == "67%" and metrics["Deterministic"] == "no"
    assert any("fork at token 2" in line for line in texts(at.markdown))
    groups = frame(at, "share")
    assert groups["count"].tolist() == [2, 1]
    samples = frame(at, "total logprob")
    assert samples["total logprob"].tolist() == pytest.approx([3 * math.log(0.5)] * 3)
    # The samples run 3 at a time, in any order: a sample forks from sample 1 at token 2 exactly
    # when its answer differs from sample 1's.
    first = samples["answer"].tolist()[0]
    forks = [None if pd.isna(at_token) else at_token for at_token in samples["forks from sample 1 at (token)"]]
    assert forks == [None if answer == first else 2 for answer in samples["answer"]], samples
    assert sorted(samples["answer"].tolist()) == [1, 1, 2]
    assert all(r.json["seed"] == 7 for r in server.requests if r.path == PATH_A)
    assert RunStore(runs_db_path()).count() == 3


def test_repeat_without_a_seed_has_no_determinism_verdict_and_counts_the_servers_tokens(server: ScriptedServer) -> None:
    at = app(server)
    widget(at.selectbox, "cmp.0.endpoint").select("A")
    widget(at.number_input, "cmp.0.p_temperature").set_value(0.0)
    widget(at.number_input, "cmp.repeat_k").set_value(2)
    at.run()
    # identical answers at temperature 0 without a seed: 7 words and spaces, 2 tokens by the server's count
    server.route(PATH_A, Reply.stream_text(["Red is warm.", " Blue"]))
    at.button(key="cmp.repeat_go").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Distinct answers"] == "1" and metrics["Deterministic"] == "n/a"
    assert any("No seed was set" in c for c in texts(at.caption))
    samples = frame(at, "total logprob")
    assert samples["completion tokens"].tolist() == [2, 2]
    assert "tokens" not in samples.columns and "forks from sample 1 at (word)" in samples.columns


def test_a_past_run_sent_from_history_fills_a_pane_and_shares_its_conversation(server: ScriptedServer) -> None:
    past = Run(endpoint="B", request=ChatRequest(model="old/model", temperature=0.9,
                                                 messages=[{"role": "user", "content": "What was it?"}]),
               choices=[ChoiceResult(text="An *old* <answer>", finish_reason="stop",
                                     logprobs=[TokenLogprob(token="An", logprob=-0.1)])],
               usage=Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7), ttft_s=0.1, total_s=0.5)
    RunStore(runs_db_path()).save(past)
    server.route(PATH_B, Reply.stream_text(["A", " new", " answer"]))
    at = app_test("compare.py")
    at.secrets["endpoints"] = {"B": {"base_url": server.base_url, "chat_path": PATH_B}}
    at.session_state["endpoint_name"] = "B"
    at.session_state["model"] = "scripted/model"
    # The Playground's conversation is empty: without the run's own, pane 2 would have nothing to send.
    at.session_state["request"] = ChatRequest(model="scripted/model", messages=[{"role": "user", "content": ""}])
    at.session_state["cmp.incoming"] = [past.id]
    at.run()
    assert not at.exception, at.exception
    assert widget_value(at, "cmp.0.p_model") == "old/model"
    assert widget_value(at, "cmp.0.p_temperature") == 0.9
    assert widget_value(at, "cmp.0.endpoint") == "B"
    assert widget_value(at, "cmp.0.include") is False  # kept as it is when Run all reruns the others
    assert widget_value(at, "cmp.0.linked") is True  # its conversation is now the shared one
    shared = [t.value for t in at.text_area if t.key and t.key.startswith("cmp.m.shared_text_")]
    assert shared == ["What was it?"]
    assert any(past.id[:8] in c for c in texts(at.caption))
    assert not any("Write a user message first" in c for c in texts(at.caption))
    html = " ".join(str(h.proto.body) for h in at.get("html"))
    assert "<answer>" not in html and "&#60;answer&#62;" in html  # model text is escaped
    summary = frame(at, "TTFT (s)")
    assert summary["model"].tolist() == ["old/model"]

    run_all(at)  # compares at once: pane 2 answers the run's question
    assert not at.error, texts(at.error)
    sent = [r.json for r in server.requests if r.path == PATH_B]
    assert [body["messages"] for body in sent] == [[{"role": "user", "content": "What was it?"}]]
    summary = frame(at, "TTFT (s)")
    assert summary["model"].tolist() == ["old/model", "scripted/model"]
    assert summary["prompt"].tolist() == ["What was it?", "What was it?"]
    assert summary["status"].tolist() == ["ok", "ok"]


def test_problems_show_as_hints_until_run_all_is_refused(server: ScriptedServer) -> None:
    at = app(server, request=ChatRequest(model="scripted/model", messages=[{"role": "user", "content": ""}]))
    hints = [c.value for c in at.caption if "Write a user message first" in str(c.value)]
    assert len(hints) == 2 and not any(":red[" in h for h in hints)  # nothing was tried yet: no red
    assert not at.error
    at.button(key="cmp.run_all").click().run()
    assert not at.exception, at.exception
    assert texts(at.error) == ["Pane 1: Write a user message first.", "Pane 2: Write a user message first."]
    hints = [c.value for c in at.caption if "Write a user message first" in str(c.value)]
    assert len(hints) == 2 and all(h.startswith(":red[") for h in hints)  # now they are what stopped the run


def test_a_preset_and_a_past_run_load_into_panes(server: ScriptedServer, tmp_path: Path) -> None:
    from playground.presets import Preset, PresetStore, Variable

    preset = Preset.new("Terse", variables=[Variable(name="country", default="France")], request=ChatRequest.from_wire({
        "model": "preset/model", "temperature": 0.1, "seed": 42, "max_tokens": 9, "logprobs": True, "top_logprobs": 3,
        "stop": ["\n"], "messages": [{"role": "system", "content": "Be terse."},
                                     {"role": "user", "content": "Capital of {{country}}?"}]}))
    PresetStore(tmp_path / "presets").save(preset)
    past = Run(endpoint="B", request=ChatRequest(model="past/model", messages=[{"role": "user", "content": "Old?"}]),
               choices=[ChoiceResult(text="old text", finish_reason="stop")])
    RunStore(runs_db_path()).save(past)
    server.route(PATH_A, Reply.stream_text(["Paris"]))
    server.route(PATH_B, Reply.stream_text(["unused"]))

    at = app(server)
    widget(at.selectbox, "cmp.0.endpoint").select("A").run()
    widget(at.selectbox, "cmp.0.preset_pick").select("Terse")
    at.button(key="cmp.0.load_preset").click().run()
    assert not at.exception, at.exception
    assert widget_value(at, "cmp.0.p_model") == "preset/model" and widget_value(at, "cmp.0.p_seed") == 42
    # the preset's max_tokens, in the field endpoint A (SGP-style) reads (issue 22)
    assert widget_value(at, "cmp.0.p_max_completion_tokens") == 9 and widget_value(at, "cmp.0.p_logprobs") is True
    assert widget_value(at, "cmp.0.linked") is False
    widget(at.selectbox, "cmp.1.run_pick").select(past.id)
    at.button(key="cmp.1.load_run").click().run()
    assert widget_value(at, "cmp.1.p_model") == "past/model" and widget_value(at, "cmp.1.include") is False
    assert at.session_state["cmp.results"][1].id == past.id

    run_all(at)
    bodies = [r.json for r in server.requests if r.path in (PATH_A, PATH_B)]
    assert len(bodies) == 1  # the past run is kept, not rerun
    body = bodies[0]
    assert body["model"] == "preset/model" and body["seed"] == 42 and body["max_completion_tokens"] == 9
    assert "max_tokens" not in body
    assert body["stop"] == ["\n"] and body["top_logprobs"] == 3
    assert body["messages"][1]["content"] == "Capital of France?"  # the variable's default filled in
    saved = [RunStore(runs_db_path()).get(s.id) for s in RunStore(runs_db_path()).list()]
    assert {run.preset for run in saved} == {"Terse", None}
    summary = frame(at, "TTFT (s)")
    assert summary["model"].tolist() == ["scripted/model", "past/model"]  # response model, then the stored run's


def test_a_stale_browser_echo_does_not_undo_a_loaded_preset(server: ScriptedServer, tmp_path: Path) -> None:
    from playground.presets import Preset, PresetStore

    PresetStore(tmp_path / "presets").save(Preset.new("Cold", request=ChatRequest.from_wire({
        "model": "preset/model", "temperature": 0.1, "messages": [{"role": "user", "content": "Hi?"}]})))
    server.route(PATH_A, Reply.stream_text(["ok"]))
    at = app(server)
    widget(at.selectbox, "cmp.0.endpoint").select("A")
    widget(at.checkbox, "cmp.1.include").uncheck().run()
    widget(at.selectbox, "cmp.0.preset_pick").select("Cold")
    shown_before = [widget(at.text_input, "cmp.0.p_model"), widget(at.number_input, "cmp.0.p_temperature"),
                    widget(at.toggle, "cmp.0.linked")]
    at.button(key="cmp.0.load_preset").click().run()
    assert widget_value(at, "cmp.0.p_model") == "preset/model" and widget_value(at, "cmp.0.linked") is False
    # A browser that has not drawn the loaded values yet sends its old ones with the next click.
    at.button(key="cmp.run_all").click()
    send_stale(at, *zip(shown_before, ["scripted/model", None, True]))
    assert not at.exception, at.exception
    assert at.session_state["cmp.batch"] is None
    body = [r.json for r in server.requests if r.path == PATH_A][-1]
    assert body["model"] == "preset/model" and body["temperature"] == 0.1
    assert body["messages"] == [{"role": "user", "content": "Hi?"}]
    assert widget_value(at, "cmp.0.p_model") == "preset/model" and widget_value(at, "cmp.0.linked") is False
    # A real edit (a value the load did not replace) is kept.
    widget(at.text_input, "cmp.0.p_model").input("other/model").run()
    assert widget_value(at, "cmp.0.p_model") == "other/model"


def test_text_typed_just_before_run_all_is_sent(server: ScriptedServer) -> None:
    server.route(PATH_A, Reply.stream_text(["oak"]))
    server.route(PATH_B, Reply.stream_text(["elm"]))
    at = app(server)
    setup_panes(at)
    shared = [t for t in at.text_area if t.key and t.key.startswith("cmp.m.shared_text_")]
    shared[0].input("Name a tree.")
    run_all(at)  # one interaction: Run all's callback runs before the page reads the text box
    bodies = [r.json for r in server.requests if r.path in (PATH_A, PATH_B)]
    assert len(bodies) == 2 and all(b["messages"] == [{"role": "user", "content": "Name a tree."}] for b in bodies)


def test_a_preset_without_a_value_for_its_variable_says_which(server: ScriptedServer, tmp_path: Path) -> None:
    from playground.presets import Preset, PresetStore, Variable

    PresetStore(tmp_path / "presets").save(Preset.new("Topic", variables=[Variable(name="topic")],
                                                      request=ChatRequest.from_wire({
        "model": "preset/model", "messages": [{"role": "user", "content": "Write about {{topic}}."}]})))
    at = app(server)
    widget(at.selectbox, "cmp.0.preset_pick").select("Topic")
    at.button(key="cmp.0.load_preset").click().run()
    errors = texts(at.error)
    assert len(errors) == 1, errors
    assert errors[0].startswith("Preset 'Topic' needs a value for {{topic}} (no default is set)")
    assert "Fill in a value" not in errors[0]
    assert widget_value(at, "cmp.0.p_model") == "scripted/model"  # the pane is left as it was


def test_a_run_carrying_its_endpoints_key_is_not_saved(server: ScriptedServer) -> None:
    key = "k3y-0123456789abcdef"
    server.route(PATH_A, Reply.stream_text(["fine"]))
    server.route(PATH_B, Reply.stream_text(["the key is ", key]))  # a server echoing the key back
    at = app(server)
    at.secrets["endpoints"]["B"]["api_key"] = key
    at.run()
    setup_panes(at)
    run_all(at)
    assert [r.headers.get("x-api-key") for r in server.requests if r.path == PATH_B] == [key]
    stored = RunStore(runs_db_path())
    assert [s.text_preview for s in stored.list()] == ["fine"]
    assert any("could not save run" in w for w in texts(at.warning))
    html = " ".join(str(h.proto.body) for h in at.get("html"))
    assert "the key is" in html  # still shown on screen


def test_a_panes_model_follows_its_endpoint(server: ScriptedServer) -> None:
    at = app(server)
    listing_endpoint(at, server, ["ok"])
    assert widget_value(at, "cmp.0.p_model") == "scripted/model"
    widget(at.selectbox, "cmp.0.endpoint").select("C").run()
    assert widget_value(at, "cmp.0.p_model") == "c-first"  # the old server's model is not C's
    widget(at.text_input, "cmp.0.p_model").input("c-second").run()
    widget(at.selectbox, "cmp.0.endpoint").select("A").run()
    assert widget_value(at, "cmp.0.p_model") == "c-second"  # A lists nothing: kept
    widget(at.selectbox, "cmp.0.endpoint").select("C").run()
    assert widget_value(at, "cmp.0.p_model") == "c-second"  # C lists it: the same name
    widget(at.checkbox, "cmp.1.include").uncheck()
    run_all(at)
    body = [r.json for r in server.requests if r.path == "/c/v1/chat/completions"][-1]
    assert body["model"] == "c-second"
    saved = RunStore(runs_db_path()).list()
    assert [(r.endpoint, r.model) for r in saved] == [("C", "c-second")]


def test_the_shared_conversation_keeps_going(server: ScriptedServer) -> None:
    """Add to conversation under a pane's answer; Regenerate in the shared conversation runs all
    panes on the messages above it, and the pane's answer added then is one click from the old one."""
    server.route(PATH_A, Reply.stream_text(["Red", "."]))
    server.route(PATH_B, Reply.stream_text(["Blue", "."]))
    at = app(server)
    setup_panes(at)
    run_all(at)
    at.button(key="cmp.0.add_to_conversation").click().run()
    assert not at.exception, at.exception
    shared = lambda: [(m["role"], m["content"]) for m in at.session_state["cmp.shared"]]  # noqa: E731
    assert shared() == [("user", "Name a colour."), ("assistant", "Red."), ("user", "")]
    assert not [b for b in at.button if b.key == "cmp.0.add_to_conversation"]
    regenerate = [b for b in at.button if b.key and b.key.startswith("cmp.m.shared_regen_")]
    regenerate[0].click().run()
    assert at.session_state["cmp.batch"] is None
    bodies = [r.json for r in server.requests if r.path in (PATH_A, PATH_B)][-2:]
    assert [b["messages"] for b in bodies] == [[{"role": "user", "content": "Name a colour."}]] * 2
    assert shared() == [("user", "Name a colour.")]
    at.button(key="cmp.1.add_to_conversation").click().run()
    assert shared() == [("user", "Name a colour."), ("assistant", "Blue."), ("user", "")]
    assert "2 of 2" in [c.value for c in at.caption]
    [b for b in at.button if b.key and b.key.startswith("cmp.m.shared_prev_")][0].click().run()
    assert shared() == [("user", "Name a colour."), ("assistant", "Red."), ("user", "")]


def test_a_refused_regenerate_gives_the_shared_conversation_back(server: ScriptedServer) -> None:
    server.route(PATH_A, Reply.stream_text(["Red", "."]))
    at = app(server)
    widget(at.selectbox, "cmp.0.endpoint").select("A")
    widget(at.checkbox, "cmp.1.include").uncheck().run()
    run_all(at)
    at.button(key="cmp.0.add_to_conversation").click().run()
    widget(at.checkbox, "cmp.0.include").uncheck().run()
    assert (widget_value(at, "cmp.0.include"), widget_value(at, "cmp.1.include")) == (False, False)
    [b for b in at.button if b.key and b.key.startswith("cmp.m.shared_regen_")][0].click().run()
    assert [(m["role"], m["content"]) for m in at.session_state["cmp.shared"]] == [
        ("user", "Name a colour."), ("assistant", "Red."), ("user", "")]
    assert "Include in Run all" in " ".join(e.value for e in at.error)
