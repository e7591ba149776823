"""The CLI with several prompts and models (issue 21): --variant presets, --model on several
--endpoints, --format json|csv|junit (the JUnit XML validated against the schema CI tools read,
tests/fixtures/junit.xsd), repeats with k of n, flaky cases and --pass-at, and --help that
imports no pandas."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from playground.experiments import cases_to_csv
from playground.experiments.cli import main
from playground.experiments.model import Case
from playground.presets import preset_to_json
from tests.test_experiments import bodies, classifier_preset, label_answer, last_user, modelled

ROOT = Path(__file__).resolve().parents[1]
XSD = Path(__file__).parent / "fixtures" / "junit.xsd"


@pytest.fixture
def cli(tmp_path: Path):
    """A classifier preset with three cases (the last one fails: the server says bad), and two
    endpoints (a, b) that label reviews; cli(*args) runs `run PRESET --no-save ...`."""
    servers = [modelled(label_answer), modelled(label_answer)]
    preset = tmp_path / "tiny.json"
    preset.write_text(preset_to_json(classifier_preset([{"kind": "equals", "ignore_case": True}])))
    cases = [Case(values={"review": "good one"}, expected="good"), Case(values={"review": "good two"}, expected="good"),
             Case(values={"review": "meh <&> three"}, expected="good")]
    (tmp_path / "tiny.cases.csv").write_text(cases_to_csv(cases))
    secrets = {"endpoints": {"a": {"base_url": servers[0].base_url}, "b": {"base_url": servers[1].base_url}}}

    def run(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        code = main(["run", str(preset), "--no-save", *args], out=out, environ={"PLAYGROUND_DATA_DIR": str(tmp_path)},
                    secrets=secrets)
        return code, out.getvalue()

    run.tmp, run.servers = tmp_path, servers
    yield run
    for server in servers:
        server.close()


def junit_schema():
    import xmlschema

    return xmlschema.XMLSchema(str(XSD))


def test_junit_output_is_valid_junit_xml_with_a_test_per_case(cli):
    code, text = cli("--endpoint", "a", "--format", "junit")
    assert code == 1
    schema = junit_schema()
    schema.validate(text)  # raises with the first way it breaks the schema
    root = ET.fromstring(text)
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == ("testsuites", "3", "1", "0")
    (suite,) = root.findall("testsuite")
    names = [case.get("name") for case in suite.findall("testcase")]
    assert names == ["case 1: review=good one", "case 2: review=good two", "case 3: review=meh <&> three"]
    failure = suite.findall("testcase")[2].find("failure")
    assert failure.get("message").startswith("0 of 1 repeats passed: equals {{expected}}: answer 'bad' != 'good'")
    assert suite.findall("testcase")[0].find("failure") is None


def test_the_junit_schema_fixture_rejects_what_ci_tools_would_not_read():
    schema = junit_schema()
    assert not schema.is_valid('<testsuites><testsuite name="x"><testcase name="c"/></testsuite></testsuites>')
    assert not schema.is_valid('<testsuites><testsuite name="x" tests="1"><testcase name="c" classname="k">'
                               '<failure/><error/></testcase></testsuite></testsuites>')


def test_json_and_csv_formats_carry_every_case_and_trial(cli):
    code, text = cli("--endpoint", "a", "--format", "json")
    data = json.loads(text)
    assert code == 1 and [c["verdict"] for c in data["cases"]] == ["pass", "pass", "fail"]
    assert data["variants"][0]["passed"] == 2 and data["cases"][2]["trials"][0]["answer"] == "bad"
    code, text = cli("--endpoint", "a", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["case"], r["status"], r["answer"]) for r in rows] == [("1", "pass", "good"), ("2", "pass", "good"),
                                                                      ("3", "fail", "bad")]


def test_variant_presets_and_models_on_several_endpoints_are_the_variants(cli):
    other = cli.tmp / "polite.json"
    polite = classifier_preset([]).model_copy(update={"name": "Polite classifier"})
    request = polite.request.to_wire()
    request["messages"] = [{"role": "user", "content": "Please label: {{review}}"}]
    other.write_text(preset_to_json(polite.model_copy(update={"request": type(polite.request).from_wire(request)})))
    code, text = cli("--variant", str(other), "--endpoint", "a", "--endpoint", "b", "--format", "json")
    labels = [v["label"] for v in json.loads(text)["variants"]]
    assert labels == ["Tiny classifier @ a", "Tiny classifier @ b", "Polite classifier @ a", "Polite classifier @ b"]
    for server in cli.servers:  # each endpoint got both prompts for each case
        prompts = sorted(last_user(b) for b in bodies(server))
        assert len(prompts) == 6 and sum(p.startswith("Please label: ") for p in prompts) == 3
    code, text = cli("--endpoint", "a", "--model", "m/one", "--model", "m/two", "--format", "json")
    assert [v["label"] for v in json.loads(text)["variants"]] == ["m/one", "m/two"]
    code, text = cli("--variant", str(other), "--endpoint", "a", "--endpoint", "b", "--model", "x")
    assert code == 0 or code == 1  # 4 variants: allowed
    code, _ = cli("--variant", str(other), "--endpoint", "a", "--endpoint", "b", "--model", "x", "--model", "y")
    assert code == 2  # 8 variants: refused before any request


def flaky_answer(counter: dict):
    def answer(body: dict) -> dict:
        text = last_user(body)
        if "two" in text:  # case 2 passes on every other request
            counter["n"] += 1
            return {"text": "good" if counter["n"] % 2 else "bad"}
        return {"text": "good" if "good" in text else "bad"}
    return answer


def test_repeats_give_k_of_n_flaky_cases_and_pass_at(cli, capsys):
    counter = {"n": 0}
    cli.servers[0].respond = modelled(flaky_answer(counter)).respond
    cases = [Case(values={"review": "good one"}, expected="good"), Case(values={"review": "good two"}, expected="good")]
    (cli.tmp / "tiny.cases.csv").write_text(cases_to_csv(cases))
    code, text = cli("--endpoint", "a", "--repeats", "3", "--concurrency", "1")
    assert code == 1, text  # one repeat of case 2 failed: without --pass-at every repeat must pass
    assert "pass case 1 (review=good one), variant 1: 3 of 3 passed" in text
    assert "FAIL case 2 (review=good two), variant 1: 2 of 3 passed (flaky)" in text
    assert "Flaky cases (1): case 2 variant 1 (2/3)" in text
    counter["n"] = 0
    code, text = cli("--endpoint", "a", "--repeats", "3", "--concurrency", "1", "--pass-at", "2")
    assert code == 0, text
    assert "pass case 2 (review=good two), variant 1: 2 of 3 passed (flaky)" in text
    counter["n"] = 0
    code, text = cli("--endpoint", "a", "--repeats", "3", "--concurrency", "1", "--pass-at", "3", "--format", "junit")
    assert code == 1 and 'message="2 of 3 repeats passed (flaky)' in text
    code, _ = cli("--endpoint", "a", "--repeats", "3", "--pass-at", "4")
    assert code == 2 and "--pass-at must be 1 to --repeats (3)" in capsys.readouterr().err


def test_help_starts_without_pandas_numpy_or_streamlit():
    script = ("import runpy, sys\n"
              "sys.argv = ['playground.experiments', '--help']\n"
              "try:\n    runpy.run_module('playground.experiments', run_name='__main__', alter_sys=True)\n"
              "except SystemExit as end:\n    code = end.code\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'numpy', 'streamlit'))\n"
              "print('HEAVY', heavy, 'EXIT', code)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "import-promptfoo" in done.stdout and "HEAVY [] EXIT 0" in done.stdout, done.stdout + done.stderr


def test_grader_and_grader_model_send_rubric_checks_to_their_endpoint(cli, capsys):
    from playground.experiments.grader import SYSTEM
    from tests.scripted_server import Reply

    preset = classifier_preset([{"kind": "rubric", "value": "Is {{answer}} the label of {{review}}?"}])
    (cli.tmp / "tiny.json").write_text(preset_to_json(preset))
    cli.servers[1].respond = lambda received: (Reply.stream_text(["5"]) if received.method == "POST"  # b grades
                                               else Reply.json(404, {}))
    code, text = cli("--endpoint", "a", "--grader", "b", "--grader-model", "judge/x", "--format", "json")
    assert code == 0, text
    graded = [r.json for r in cli.servers[1].requests if r.method == "POST"]
    assert len(graded) == 3 and {g["model"] for g in graded} == {"judge/x"}
    assert {g["messages"][0]["content"] for g in graded} == {SYSTEM}
    assert all(r.json["messages"][0]["content"] != SYSTEM for r in cli.servers[0].requests if r.method == "POST")
    code, _ = cli("--endpoint", "a", "--grader", "nobody")
    assert code == 2 and "no endpoint named 'nobody'" in capsys.readouterr().err
