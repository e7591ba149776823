"""The Playground's run in flight through Streamlit's AppTest: a rerun that is not `Stop
generating` (here an edit of the temperature while the answer streams) leaves the stream
running to its end, and the edit is kept for the next run.

AppTest cannot click while a page run is in progress (its run() returns when the live view's
fragment has finished), so the run in flight is put in the session as the Run button does
(state.start_run: a one-item Batch under state.LIVE) and the edit is the next interaction.
"""

from __future__ import annotations

import pytest

from playground.runs.batch import Batch
from playground.ui.playground import state
from tests.scripted_server import Reply, ScriptedServer
from tests.test_app_playground import open_app, request_of, type_user_message, widget

TOKENS = [f"w{i:02d} " for i in range(20)]  # 20 tokens 0.05 s apart: a 1 s answer


@pytest.fixture
def server(monkeypatch, tmp_path):
    with ScriptedServer() as scripted:
        scripted.pose_as_sandbox()
        monkeypatch.setenv("PLAYGROUND_SANDBOX_PORT", str(scripted.port))
        monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("PLAYGROUND_PRESETS_DIR", str(tmp_path / "presets"))
        monkeypatch.delenv("SGP_API_KEY", raising=False)
        yield scripted


def test_an_edit_while_a_run_streams_does_not_stop_it(server):
    server.add(Reply.stream_text(TOKENS, delay_s=0.05))
    at = open_app()
    type_user_message(at, "Count slowly")
    sent = request_of(at)
    live = Batch([(server.endpoint(), sent)]).start()
    at.session_state[state.LIVE] = live
    assert not live.done
    widget(at.number_input, "p_temperature").set_value(1.3).run()
    assert not at.exception, at.exception
    run = at.session_state[state.LAST]
    assert run is live.runs[0]
    assert run.text == "".join(TOKENS) and not run.cancelled and not run.partial and run.error is None
    assert state.LIVE not in at.session_state
    assert request_of(at).temperature == 1.3  # the edit is kept for the next run
    assert not at.button(key="run").disabled
    assert not [w for w in at.warning if "Stopped by you" in str(w.value)]
