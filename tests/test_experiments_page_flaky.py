"""The Experiments page (AppTest) with issue 21's checks: repeats that disagree are listed as
flaky cases, a case's own checks (a CSV column named after a kind) are named in the matrix and
grade only their case, and a cell's checks table shows them."""

from __future__ import annotations

from pathlib import Path

from playground.ui.experiments import state as exp_state
from tests.apptest_support import frame
from tests.scripted_server import Reply
from tests.test_experiments_page import app, run_experiment, server, use_checks  # noqa: F401  (server: a fixture)

CASES = "thing,expected,note,icontains\nan apple,red,,\nthe sea,blue,,DEEP\n"


def test_flaky_cases_and_a_cases_own_checks_on_the_page(server, tmp_path: Path) -> None:  # noqa: F811
    use_checks(tmp_path, [{"kind": "contains", "value": "{{expected}}", "ignore_case": True}], CASES)
    count = {"apple": 0}

    def respond(received):
        if received.method != "POST":  # the page asking an endpoint for its models
            return Reply.json(200, {"object": "list", "data": []})
        prompt = received.json["messages"][-1]["content"]
        if "apple" in prompt:
            count["apple"] += 1
            return Reply.stream_text(["Red" if count["apple"] % 2 else "Green"])
        return Reply.stream_text(["Deep blue"])

    server.respond = respond
    at = app(server)
    assert list(frame(at, "thing").columns) == ["thing", "expected", "note", "checks"]
    at.number_input(key=exp_state.REPEATS).set_value(3).run()
    run_experiment(at)

    shown = [m.value for m in at.markdown]
    assert "**Flaky cases** (1: some repeats passed, some did not)" in shown, shown
    flaky = frame(at, "answers")
    assert flaky.to_dict("records") == [{"case": "1. thing=an apple", "variant": "1. scripted/model @ A",
                                         "passed": "2 of 3", "answers": "'Red' ×2; 'Green' ×1"}]
    matrix = frame(at, "own checks")
    assert list(matrix["own checks"]) == ["", "contains DEEP"]
    assert matrix.iloc[0, -1].startswith("❌ 2/3 Red") and matrix.iloc[1, -1].startswith("✅ 3/3 Deep blue")
    widget_case = next(s for s in at.selectbox if s.key and s.key.endswith(exp_state.CELL_CASE))
    widget_case.select(1).run()
    checks = frame(at, "grader confidence")
    assert list(checks["check"]) == ["contains {{expected}}", "contains DEEP"] and list(checks[""]) == ["✅", "✅"]
