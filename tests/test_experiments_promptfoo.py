"""`import-promptfoo` (issue 21) on three promptfoo-style configs written from promptfoo's
documented format (tests/fixtures/promptfoo/): the presets and cases it writes, the checks each
assertion becomes, its report of what it could not carry over (line by line, with where), and
the imported suites run by the CLI against a scripted server."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from playground.experiments.cases import load_cases
from playground.experiments.cli import main
from playground.experiments.promptfoo import import_config
from playground.presets import parse_preset_bytes
from tests.test_experiments import last_user, modelled

FIXTURES = Path(__file__).parent / "fixtures" / "promptfoo"


def imported(name: str, tmp_path: Path):
    out = tmp_path / "presets"
    report = import_config(FIXTURES / name / "promptfooconfig.yaml", out)
    presets = {p.name: parse_preset_bytes(p.read_bytes(), p.name) for p in report.written if p.suffix == ".json"}
    return report, out, presets


def checks_of(items) -> list[dict]:
    return [check.to_dict() for check in items]


def test_getting_started_providers_become_variants_and_tests_cases_with_their_checks(tmp_path):
    report, out, presets = imported("getting-started", tmp_path)
    assert [p.name for p in report.written] == ["getting-started.json", "getting-started.cases.csv",
                                                 "getting-started--prompt-1--openai-chat-gpt-4o.json"]
    assert [p.request.model for p in presets.values()] == ["openai/gpt-4.1-mini", "openai/gpt-4o"]
    first = presets["getting-started.json"]
    assert first.request.messages[0].content == "Convert the following English text to {{language}}: {{input}}"
    cases = load_cases(out / "getting-started.cases.csv", list(first.defaults())).cases
    assert [c.values["language"] for c in cases] == ["French", "Spanish", "German"]
    assert [checks_of(c.checks) for c in cases] == [
        [{"kind": "contains", "value": "Bonjour"}],
        [{"kind": "contains", "value": "biblioteca", "ignore_case": True}],
        [{"kind": "rubric", "value": "does not describe self as an AI, model, or chatbot"},
         {"kind": "starts_with", "value": "Wie"}]]
    assert report.dropped == ['tests[1]: assert[1]: javascript is not importable ("output.length < 200")']


def test_tweets_defaulttest_provider_config_weights_and_thresholds_and_the_report(tmp_path):
    report, out, presets = imported("tweets", tmp_path)
    assert list(presets) == ["tweet-ideas.json", "tweet-ideas--prompts-1--haiku.json",
                             "tweet-ideas--prompts-2--openai-chat-gpt-4o-mini.json",
                             "tweet-ideas--prompts-2--haiku.json"]
    first = presets["tweet-ideas.json"]
    wire = first.request.to_wire()
    assert (wire["model"], wire["temperature"], wire["max_tokens"]) == ("openai/gpt-4o-mini", 0.7, 150)
    assert presets["tweet-ideas--prompts-1--haiku.json"].request.model == "anthropic/claude-3-5-haiku-20241022"
    assert presets["tweet-ideas--prompts-2--haiku.json"].request.messages[0].content.startswith(
        "Write a concise, funny tweet")
    assert first.defaults() == {"topic": None, "audience": "developers"}
    assert checks_of(first.checks) == [{"kind": "not_contains", "value": "as an ai", "ignore_case": True}]
    cases = load_cases(out / "tweet-ideas.cases.csv", list(first.defaults())).cases
    assert [checks_of(c.checks) for c in cases] == [
        [{"kind": "contains", "value": "banana", "ignore_case": True},
         {"kind": "similar", "value": "Bananas are a great source of potassium", "threshold": 0.6}],
        [{"kind": "contains_any", "values": ["avocado", "toast"]}, {"kind": "max_cost", "limit": 0.002}],
        [{"kind": "rubric", "value": "mentions a landmark of the city", "weight": 2.0},
         {"kind": "max_latency_s", "limit": 5.0}]]
    assert cases[2].note == "a landmark, graded"
    assert report.dropped == [
        "providers[1]: config.apiKeyEnvar is not carried over (only sampling fields)",
        'defaultTest.assert[0]: javascript is not importable ("output.length <= 280")',
        "tests[0]: assert[1]: similar is scored with difflib's ratio here, not embeddings: check its threshold",
        'tests[2]: assert[2]: rouge-n is not importable ("The Statue of Liberty")',
        "tests[2]: threshold is not carried over (a preset's pass_threshold is every case's)",
    ]


def test_extraction_tests_from_csv_with_expected_columns_a_schema_and_a_python_file(tmp_path):
    report, out, presets = imported("extraction", tmp_path)
    (preset,) = presets.values()
    assert [m.role for m in preset.request.messages] == ["system", "user"]
    assert checks_of(preset.checks) == [
        {"kind": "json_schema", "schema": {"type": "object", "required": ["name", "age"]}},
        {"kind": "python", "value": "check_age.py:get_assert"}]
    assert (out / "check_age.py").read_text() == (FIXTURES / "extraction" / "check_age.py").read_text()
    cases = load_cases(out / "structured-extraction.cases.csv", list(preset.defaults())).cases
    assert [checks_of(c.checks) for c in cases] == [
        [{"kind": "contains", "value": "Maria Lopez"}],
        [{"kind": "contains", "value": "tom becker", "ignore_case": True},
         {"kind": "rubric", "value": "names the person's age correctly"}],
        [{"kind": "equals", "value": '{"name": "Ana", "age": 29}'}]]
    assert report.dropped == [
        "defaultTest.assert[1]: python check_age.py: copied beside the presets; a dict (GradingResult) return is "
        "not read",
        'tests.csv line 2: __expected2: javascript is not importable ("JSON.parse(output).age === 34")']


def person(body: dict) -> dict:
    """The model under test extracts the person; as the grader (its system prompt) it rates 4."""
    if "grade an answer" in body["messages"][0]["content"]:
        return {"text": "4"}
    text = last_user(body)
    name = text.split(",")[0].split(" is ")[0].rstrip(".")
    age = int(next(word.strip(",.") for word in text.split() if word.strip(",.").isdigit()))
    return {"text": json.dumps({"name": name, "age": age})}


def test_the_command_prints_its_report_and_the_imported_suite_runs(tmp_path, capsys):
    out = io.StringIO()
    config = FIXTURES / "extraction" / "promptfooconfig.yaml"
    assert main(["import-promptfoo", str(config), "--out", str(tmp_path / "p")], out=out) == 0
    text = out.getvalue()
    assert "Not carried over (2):\n  defaultTest.assert[1]: python check_age.py" in text
    assert "  tests.csv line 2: __expected2: javascript is not importable" in text
    assert f"Run it: python -m playground.experiments run {tmp_path / 'p' / 'structured-extraction.json'}" in text
    with modelled(person) as server:
        ran = io.StringIO()
        code = main(["run", str(tmp_path / "p" / "structured-extraction.json"), "--endpoint", "mock", "--no-save",
                     "--format", "json"], out=ran, environ={}, secrets={"endpoints": {"mock": {
                         "base_url": server.base_url}}})
    data = json.loads(ran.getvalue())
    assert code == 0 and [c["verdict"] for c in data["cases"]] == ["pass", "pass", "pass"], ran.getvalue()
    labels = [check["label"] for check in data["cases"][1]["trials"][0]["checks"]]
    assert labels[:2] == ["json_schema", "python check_age.py:get_assert"] and labels[3].startswith("rubric")


def test_a_config_that_cannot_be_read_exits_2(tmp_path, capsys):
    bad = tmp_path / "promptfooconfig.yaml"
    bad.write_text("prompts: [\n")
    assert main(["import-promptfoo", str(bad)], out=io.StringIO()) == 2
    assert "error:" in capsys.readouterr().err
    shutil.copytree(FIXTURES / "getting-started", tmp_path / "nothing")
    (tmp_path / "nothing" / "promptfooconfig.yaml").write_text("prompts:\n  - file://missing.js\n")
    assert main(["import-promptfoo", str(tmp_path / "nothing" / "promptfooconfig.yaml")], out=io.StringIO()) == 2
    assert "prompts[0]: file://missing.js: prompt functions are not importable" in capsys.readouterr().err


@pytest.mark.parametrize("line, check", [
    ("contains: Paris", {"kind": "contains", "value": "Paris"}),
    ("not-contains: Rome", {"kind": "not_contains", "value": "Rome"}),
    ("regex: ^P", {"kind": "regex", "value": "^P"}),
    ("similar(0.7): Paris, France", {"kind": "similar", "value": "Paris, France", "threshold": 0.7}),
    ("icontains-any: paris,lyon", {"kind": "contains_any", "values": ["paris", "lyon"], "ignore_case": True}),
    ("starts-with: The", {"kind": "starts_with", "value": "The"}),
    ("Paris", {"kind": "equals", "value": "Paris"}),
])
def test_csv_expected_prefixes(tmp_path, line, check):
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "tests.csv").write_text(f'city,__expected\nParis,"{line}"\n')
    (folder / "promptfooconfig.yaml").write_text("prompts: ['Name {{city}}']\ntests: file://tests.csv\n")
    report = import_config(folder / "promptfooconfig.yaml", tmp_path / "out")
    cases = load_cases(next(p for p in report.written if p.suffix == ".csv"), ["city"]).cases
    assert checks_of(cases[0].checks) == [check]
