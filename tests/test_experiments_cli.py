"""`python -m playground.experiments run ...`: its table, and its exit codes (0 all passed, 1 a check
failed or, with --baseline, a cell regressed, 2 a usage error), against a real loopback server."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from playground.experiments import ExperimentStore, cases_to_csv
from playground.experiments.cli import main
from playground.experiments.model import Case
from playground.presets import preset_to_json
from tests.test_experiments import classifier_preset, label_answer, modelled, reply_of

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def setup(tmp_path: Path):
    """A preset with 4 cases beside it, a server that labels them, settings naming that server."""
    answers = {"flip": False}

    def answer(body: dict) -> dict:
        text = body["messages"][-1]["content"]
        if answers["flip"] and "case 1" in text:
            text = text.replace("good", "bad")
        return label_answer({"messages": [{"content": text}]})

    server = modelled(answer)
    preset_path = tmp_path / "tiny.json"
    preset_path.write_text(preset_to_json(classifier_preset()), encoding="utf-8")
    cases = [Case(values={"review": f"case {n} good p=0.9"}, expected="good") for n in range(4)]
    (tmp_path / "tiny.cases.csv").write_text(cases_to_csv(cases), encoding="utf-8")
    secrets = {"endpoints": {"mock": {"base_url": server.base_url}},
               "prices": {"scripted/model": [1.0, 2.0]}}
    environ = {"PLAYGROUND_DATA_DIR": str(tmp_path / "data")}

    def cli(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        code = main(["run", str(preset_path), "--endpoint", "mock", *args], out=out, environ=environ,
                    secrets=secrets)
        return code, out.getvalue()

    cli.tmp = tmp_path
    cli.server = server
    cli.answers = answers
    cli.preset = preset_path
    cli.environ = environ
    yield cli
    server.close()


def test_all_passing_exits_0_and_prints_the_variant_table(setup) -> None:
    code, text = setup("--model", "scripted/model", "--model", "other/model")
    assert code == 0, text
    lines = text.splitlines()
    assert "4 cases x 2 variants x 1 repeats = 8 trials; 8 done" in text
    header = next(line for line in lines if "variant" in line and "passed" in line)
    assert header.split() == ["variant", "model", "passed", "rate", "unchecked", "mean", "s", "p95", "s", "tokens",
                              "cost", "$"]
    rows = [line for line in lines if "4/4" in line]
    assert len(rows) == 2 and all("100.0%" in row for row in rows) and sum(r.startswith("*") for r in rows) == 1
    assert "Calibration, other/model: When this model says 90%, it is right 100% of the time" in text
    assert "Failures" not in text


def test_a_failing_check_exits_1_and_lists_the_failure(setup) -> None:
    setup.answers["flip"] = True
    code, text = setup()
    assert code == 1
    assert "Failures (1):" in text
    failure = next(line for line in text.splitlines() if line.strip().startswith("FAIL"))
    assert "case 2 (review=case 1 good p=0.9), variant 1" in failure
    assert "answer 'bad'" in failure and "equals {{expected}}: answer 'bad' != 'good'" in failure


def test_with_a_baseline_only_a_regression_fails(setup) -> None:
    out = setup.tmp / "first.jsonl"
    setup.answers["flip"] = True
    assert setup("--out", str(out))[0] == 1  # a failing case, recorded
    code, text = setup("--baseline", str(out))
    assert code == 0, text  # the same failure again: no regression
    assert "0 pass -> fail, 0 fail -> pass, 0 answers changed, 0 new cells (0 failing)" in text
    setup.answers["flip"] = False
    good = setup.tmp / "good.jsonl"
    assert setup("--out", str(good))[0] == 0
    setup.answers["flip"] = True
    code, text = setup("--baseline", str(good))
    assert code == 1 and "REGRESSED case 2 (review=case 1 good p=0.9), variant 1: pass -> fail" in text
    # A run id from the history works too, and "latest" is the run before this one.
    store = ExperimentStore(Path(setup.environ["PLAYGROUND_DATA_DIR"]) / "runs.sqlite3")
    runs = store.list("tiny-classifier")
    assert len(runs) == 4 and runs[1].passed == 4
    assert setup("--baseline", runs[1].id)[0] == 1
    assert setup("--baseline", "latest")[0] == 0  # against the run just before: the same failure


@pytest.mark.parametrize("args, words", [
    (["--repeats", "11"], "--repeats must be 1 to 10"),
    (["--model", "a", "--model", "b", "--model", "c", "--model", "d", "--model", "e"], "at most 4"),
    (["--cases", "nowhere.csv"], "no cases file"),
    (["--baseline", "no-such-run"], "no earlier run"),
])
def test_usage_errors_exit_2(setup, args: list[str], words: str, capsys) -> None:
    code, _ = setup(*args)
    assert code == 2 and words in capsys.readouterr().err


def test_bad_rows_and_unknown_endpoints_exit_2(setup, capsys) -> None:
    bad = setup.tmp / "bad.csv"
    bad.write_text("review,expected\nfine,good\ntoo,many,fields\n", encoding="utf-8")
    assert setup("--cases", str(bad))[0] == 2
    assert "line 3: 3 fields, the header has 2" in capsys.readouterr().err
    assert main(["run", str(setup.preset), "--endpoint", "nope"], out=io.StringIO(), environ=setup.environ,
                secrets={}) == 2
    assert "no endpoint named 'nope'" in capsys.readouterr().err


def test_the_module_runs_and_argparse_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["run"]) == 2 and "preset" in capsys.readouterr().err  # argparse's own usage error
    missing = subprocess.run([sys.executable, "-m", "playground.experiments", "run", str(tmp_path / "x.json")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


# --- never green on what was not checked ---------------------------------------------------------


def write_preset(setup, checks: list[dict], **request: object) -> None:
    preset = classifier_preset(checks)
    preset = preset.model_copy(update={"request": preset.request.model_copy(update=request)}) if request else preset
    setup.preset.write_text(preset_to_json(preset), encoding="utf-8")


def write_cases(setup, text: str) -> None:
    (setup.tmp / "tiny.cases.csv").write_text(text, encoding="utf-8")


def sent(setup) -> int:
    return len([r for r in setup.server.requests if r.method == "POST"])


@pytest.mark.parametrize("check, words", [
    ({"kind": "equals", "value": "{{expeted}}"}, "check 'equals {{expeted}}' names {{expeted}}, which no case has"),
    ({"kind": "regex", "value": "^{{reviw}}"}, "check 'regex ^{{reviw}}' names {{reviw}}"),
    ({"kind": "not_contains", "value": "{{note}}"}, "check 'not_contains {{note}}' names {{note}}"),
    ({"kind": "contains", "value": "{{ expected | lower }}"}, "'{{ expected | lower }}' is not supported"),
    ({"kind": "json_schema"}, "check 'json_schema' has no schema"),
])
def test_a_check_that_cannot_check_exits_2_before_any_request(setup, check: dict, words: str, capsys) -> None:
    write_preset(setup, [check])
    assert setup()[0] == 2
    assert words in capsys.readouterr().err and sent(setup) == 0


def test_template_syntax_in_the_prompt_is_refused_not_sent(setup, capsys) -> None:
    preset = classifier_preset()
    wire = preset.request.to_wire()
    wire["messages"][0]["content"] = "{{ review | upper }}"
    data = json.loads(preset_to_json(preset))
    setup.preset.write_text(json.dumps({**data, "request": wire}), encoding="utf-8")
    assert setup()[0] == 2
    assert "'{{ review | upper }}' in its messages is not supported" in capsys.readouterr().err and sent(setup) == 0


def test_an_answer_no_check_applied_to_is_unchecked_and_exits_1(setup) -> None:
    write_cases(setup, "review,expected,note\ncase 0 good p=0.9,good,\ncase 1 good p=0.9,,no expected answer\n")
    write_preset(setup, [{"kind": "equals", "ignore_case": True}])
    code, text = setup()
    assert code == 1, text
    row = next(line for line in text.splitlines() if "1/2" in line)
    assert row.split()[-6:-4] == ["50.0%", "1"]  # rate, then the unchecked count
    assert "Unchecked (no check applied; --allow-unchecked lets them pass) (1):" in text
    assert ("UNCHECKED case 2 (review=case 1 good p=0.9), variant 1: answer 'good': equals {{expected}}: "
            "not checked: the case has no expected value") in text
    assert "Failures" not in text
    code, text = setup("--allow-unchecked")
    assert code == 0, text


def test_a_cases_file_without_a_column_a_check_reads_exits_2(setup, capsys) -> None:
    write_cases(setup, "review,note\ncase 0 good,\n")
    assert setup()[0] == 2
    assert "tiny.cases.csv: no column 'expected', which a check reads as {{expected}}" in capsys.readouterr().err
    assert sent(setup) == 0


def test_a_baseline_must_be_of_this_experiment_and_share_a_cell(setup, capsys) -> None:
    first = setup.tmp / "first.jsonl"
    assert setup("--out", str(first))[0] == 0
    run_id = json.loads(first.read_text().splitlines()[0])["experiment_run"]
    other = json.loads(first.read_text().splitlines()[0])
    other["experiment"]["id"] = "another-experiment"
    foreign = setup.tmp / "foreign.jsonl"
    foreign.write_text("\n".join([json.dumps(other), *first.read_text().splitlines()[1:]]) + "\n")
    before = sent(setup)
    assert setup("--baseline", str(foreign))[0] == 2
    assert (f"baseline run {run_id} is of experiment 'another-experiment', not 'tiny-classifier'"
            in capsys.readouterr().err)
    write_cases(setup, "review,expected,note\nsomething else good,good,\n")
    assert setup("--baseline", str(first))[0] == 2
    assert (f"baseline run {run_id} of 'tiny-classifier' has no cell that this run of 'tiny-classifier' has"
            in capsys.readouterr().err)
    assert sent(setup) == before  # refused before any request


def test_baseline_latest_with_no_earlier_run_exits_2_before_any_request(setup, capsys) -> None:
    assert setup("--baseline", "latest")[0] == 2
    assert "no earlier run 'latest' of 'tiny-classifier'" in capsys.readouterr().err and sent(setup) == 0


def test_a_new_case_that_fails_is_a_failure_against_the_baseline(setup) -> None:
    first = setup.tmp / "first.jsonl"
    assert setup("--out", str(first))[0] == 0
    cases = (setup.tmp / "tiny.cases.csv").read_text()
    write_cases(setup, cases + "case 9 bad p=0.9,good,a new case the model gets wrong\n")
    code, text = setup("--baseline", str(first))
    assert code == 1, text
    assert "0 pass -> fail, 0 fail -> pass, 0 answers changed, 1 new cells (1 failing)" in text
    assert "NEW case 5 (review=case 9 bad p=0.9), variant 1: fail ('bad')" in text
    write_cases(setup, cases + "case 9 good p=0.9,good,a new case that passes\n")
    code, text = setup("--baseline", str(first))
    assert code == 0 and "NEW case 5 (review=case 9 good p=0.9), variant 1: pass ('good')" in text


def test_a_failure_says_the_answer_was_cut_and_out_records_why_and_what_was_sent(setup) -> None:
    setup.server.respond = lambda received: reply_of({"text": '{"colour": "re', "finish_reason": "length"})
    write_preset(setup, [{"kind": "json_valid"}])
    out = setup.tmp / "cut.jsonl"
    code, text = setup("--out", str(out))
    assert code == 1, text
    failure = next(line for line in text.splitlines() if line.strip().startswith("FAIL"))
    assert failure.endswith("json_valid: cut at max_completion_tokens: not JSON: Unterminated string starting at: "
                            "line 1 column 12 (char 11)")
    trial = json.loads(out.read_text().splitlines()[1])
    assert trial["finish_reason"] == "length" and trial["status"] == "fail"
    assert trial["request"] == {"model": "scripted/model", "logprobs": True, "top_logprobs": 3,
                                "max_completion_tokens": 1,
                                "messages": [{"role": "user", "content": "case 0 good p=0.9"}]}
