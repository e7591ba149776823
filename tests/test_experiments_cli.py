"""`python -m playground.experiments run ...`: its table, and its exit codes (0 all passed, 1 a check
failed or, with --baseline, a cell regressed, 2 a usage error), against a real loopback server."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from playground.experiments import ExperimentStore, cases_to_csv
from playground.experiments.cli import main
from playground.experiments.model import Case
from playground.presets import preset_to_json
from tests.test_experiments import ModelServer, classifier_preset, label_answer

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

    server = ModelServer(answer)
    preset_path = tmp_path / "tiny.json"
    preset_path.write_text(preset_to_json(classifier_preset()), encoding="utf-8")
    cases = [Case(values={"review": f"case {n} good p=0.9"}, expected="good") for n in range(4)]
    (tmp_path / "tiny.cases.csv").write_text(cases_to_csv(cases), encoding="utf-8")
    secrets = {"endpoints": {"mock": {"base_url": server.httpd and f"http://127.0.0.1:{server.httpd.server_port}"}},
               "prices": {"scripted/model": [1.0, 2.0]}}
    environ = {"PLAYGROUND_DATA_DIR": str(tmp_path / "data")}

    def cli(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        code = main(["run", str(preset_path), "--endpoint", "mock", *args], out=out, environ=environ,
                    secrets=secrets)
        return code, out.getvalue()

    cli.tmp = tmp_path
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
    assert header.split() == ["variant", "model", "passed", "rate", "mean", "s", "p95", "s", "tokens", "cost", "$"]
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
    assert "0 pass -> fail, 0 fail -> pass, 0 answers changed" in text
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
