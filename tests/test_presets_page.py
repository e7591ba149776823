"""AppTest of the Presets page and of the Playground's preset bar, both through app.py (shell,
sidebar and navigation as the app runs them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator

import pytest
from streamlit.testing.v1 import AppTest

import playground.presets.model  # noqa: F401  (the package, before pages/ is on sys.path: pages/playground.py shadows it)
from playground.client.endpoint import LOCAL_MODEL
from playground.client.schema import ChatRequest
from playground.client.token_limit import with_token_limit_field
from playground.presets import Preset, PresetStore, from_share_token, preset_to_json, to_share_token
from playground.presets.sharelink import ShareLinkTooLarge
from tests.apptest_support import app_test, capture_downloads, sandbox_stand_in, texts, widget

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped presets, used by the page through PLAYGROUND_PRESETS_DIR; the
    sidebar's local sandbox is a stand-in, so no page test starts the real model."""
    with sandbox_stand_in(tmp_path, monkeypatch):
        target = tmp_path / "presets"
        for path in (REPO / "presets").glob("*.json"):
            if path.name != "preset.schema.json":
                shutil.copy(path, target / path.name)
        monkeypatch.delenv("PLAYGROUND_BASE_URL", raising=False)
        yield target


def page() -> AppTest:
    at = app_test("presets.py").run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Presets"]
    return at


# --- the Presets page -----------------------------------------------------------------------


def test_browse_and_search_by_name_and_tag(folder: Path) -> None:
    at = page()
    names = widget(at.selectbox, "presets_selected").options
    assert len(names) == len(list(folder.glob("*.json")))
    assert "Sentiment classifier via logprobs" in names
    widget(at.text_input, "presets_search").input("poem").run()
    assert widget(at.selectbox, "presets_selected").options == ["Creative: seeded poem"]
    widget(at.text_input, "presets_search").input("").run()
    widget(at.multiselect, "presets_tags").select("logprobs").run()
    assert widget(at.selectbox, "presets_selected").options == ["Sentiment classifier via logprobs"]
    # The preview shows the messages and the parameters.
    assert any("good or bad" in m for m in texts(at.markdown))
    assert any('"top_logprobs"' in j.value for j in at.json)
    widget(at.multiselect, "presets_tags").unselect("logprobs").run()
    widget(at.text_input, "presets_search").input("no such preset anywhere").run()
    assert any("No preset matches" in i for i in texts(at.info))


def test_export_downloads_the_canonical_file(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = capture_downloads(monkeypatch)
    at = page()
    widget(at.selectbox, "presets_selected").select("JSON extraction with a schema").run()
    exported = [s for s in served if s[2] == "json-extraction-with-a-schema.json"]
    assert exported, served
    data, mimetype, _ = exported[-1]
    assert mimetype.startswith("application/json")
    assert data == (folder / "json-extraction-with-a-schema.json").read_bytes()
    assert at.get("download_button")[0].proto.label == "Export (download)"


def test_export_of_a_preset_with_cases_is_a_zip_of_both_files(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import zipfile

    shutil.copy(REPO / "presets" / "sentiment-classifier-via-logprobs.cases.csv", folder)
    served = capture_downloads(monkeypatch)
    at = page()
    widget(at.selectbox, "presets_selected").select("Sentiment classifier via logprobs").run()
    data, mimetype, _ = [s for s in served if s[2] == "sentiment-classifier-via-logprobs.zip"][-1]
    assert mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        assert {name: bundle.read(name) for name in bundle.namelist()} == {
            name: (folder / name).read_bytes() for name in ("sentiment-classifier-via-logprobs.json",
                                                            "sentiment-classifier-via-logprobs.cases.csv")}


def test_import_good_files_and_report_bad_ones_by_name(folder: Path) -> None:
    at = page()
    good = json.loads((folder / "creative-seeded-poem.json").read_text())
    good["name"] = "Imported poem"
    leaky = dict(good, name="Leaky", request={**good["request"], "api_key": "abc123"})
    files = [
        ("imported.json", json.dumps(good).encode(), "application/json"),
        ("cut.json", b'{"schema_version": 1, "name": "x", "req', "application/json"),
        ("future.json", json.dumps(dict(good, name="F", schema_version=99)).encode(), "application/json"),
        ("missing.json", json.dumps({"schema_version": 1, "name": "M"}).encode(), "application/json"),
        ("latin1.json", "{\"name\": \"caf\u00e9\"}".encode("latin-1"), "application/json"),
        ("big.json", b"{" + b" " * 1_000_001 + b"}", "application/json"),
        ("leaky.json", json.dumps(leaky).encode(), "application/json"),
    ]
    at.file_uploader(key="presets_upload").set_value(files)
    at.button(key="presets_import").click().run()
    assert not at.exception
    assert any("Imported poem" in s for s in texts(at.success))
    errors = "\n".join(texts(at.error))
    for filename, reason in [("cut", "ends too early"), ("future", "schema_version 99"),
                             ("missing", "missing field 'request'"), ("latin1", "not UTF-8"),
                             ("big", "over 1 MB"), ("leaky", "request.api_key")]:
        line = next((e for e in texts(at.error) if f"**{filename}.json**" in e), None)
        assert line is not None and reason in line, (filename, errors)
    assert "imported.json" not in errors
    assert PresetStore(folder).load("Imported poem").request.seed == 42
    assert not PresetStore(folder).exists("Leaky")
    assert "Imported poem" in widget(at.selectbox, "presets_selected").options


def test_duplicate_rename_and_delete_with_confirmation(folder: Path) -> None:
    at = page()
    widget(at.selectbox, "presets_selected").select("Creative: seeded poem").run()
    at.button(key="presets_duplicate").click().run()
    assert widget(at.selectbox, "presets_selected").value == "Creative: seeded poem (copy)"
    assert (folder / "creative-seeded-poem-copy.json").exists()
    widget(at.text_input, "presets_rename_to").input("Night poem")
    at.button(key="presets_rename").click().run()
    assert widget(at.selectbox, "presets_selected").value == "Night poem"
    assert (folder / "night-poem.json").exists() and not (folder / "creative-seeded-poem-copy.json").exists()
    widget(at.text_input, "presets_rename_to").input("../escape")
    at.button(key="presets_rename").click().run()
    assert any("looks like a path" in e for e in texts(at.error))
    at.button(key="presets_delete").click().run()
    assert any("Delete" in w for w in texts(at.warning))
    assert (folder / "night-poem.json").exists()  # not before the confirmation
    at.button(key="presets_delete_no").click().run()
    assert (folder / "night-poem.json").exists()
    at.button(key="presets_delete").click().run()
    at.button(key="presets_delete_yes").click().run()
    assert not (folder / "night-poem.json").exists()
    assert "Night poem" not in widget(at.selectbox, "presets_selected").options


def test_copy_share_link_gives_a_url_that_loads_the_preset(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_BASE_URL", "https://playground.example.com/team/")
    at = page()
    widget(at.selectbox, "presets_selected").select("Few-shot: country to capital").run()
    at.button(key="presets_share").click().run()
    url = at.code[0].value
    assert url.startswith("https://playground.example.com/team/?preset=pg1.")
    preset = from_share_token(url.split("?preset=", 1)[1])
    assert preset == PresetStore(folder).load("Few-shot: country to capital")


def test_a_preset_too_big_for_a_link_offers_the_file(folder: Path) -> None:
    import random

    rng = random.Random(1)
    text = " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8)) for _ in range(3000))
    request = ChatRequest.from_wire({"model": LOCAL_MODEL, "messages": [{"role": "user", "content": text}]})
    big = Preset.new("Big one", request)
    PresetStore(folder).save(big)
    at = page()
    widget(at.selectbox, "presets_selected").select("Big one").run()
    at.button(key="presets_share").click().run()
    assert [code.value for code in at.code] == []  # no link at all, not a cut one
    with pytest.raises(ShareLinkTooLarge) as too_large:
        to_share_token(big)
    assert str(too_large.value).startswith("This preset is too big for a share link (")
    assert texts(at.warning) == [str(too_large.value)]  # "... Export it as a file and send the file instead."


def test_diff_shows_changes_side_by_side_escaped(folder: Path) -> None:
    store = PresetStore(folder)
    base = store.load("Creative: seeded poem")
    changed = base.model_copy(update={"name": "Creative B", "request": ChatRequest.from_wire({
        **base.request.to_wire(), "seed": 7,
        "messages": [base.request.to_wire()["messages"][0],
                     {"role": "user", "content": "Write a <script>alert(1)</script> poem about a whale."}]})})
    store.save(changed)
    at = page()
    widget(at.selectbox, "presets_diff_a").select("Creative B")
    widget(at.selectbox, "presets_diff_b").select("Creative: seeded poem").run()
    html = "\n".join(h.proto.body for h in at.get("html"))
    assert "<script>" not in html and "&#60;script&#62;" in html
    assert "background:#ffd7d5" in html and "background:#ccf2d1" in html  # removed and added words
    frame = at.dataframe[-1].value
    seed_row = frame[frame["field"] == "seed"].iloc[0]
    assert seed_row["changed"] == "changed" and seed_row.iloc[1] == "7" and seed_row.iloc[2] == "42"
    assert frame[frame["field"] == "model"].iloc[0]["changed"] == ""


def test_open_in_playground_switches_to_the_playground_with_the_request(folder: Path) -> None:
    at = app_test("presets.py")
    at.session_state["model"] = "other/model"  # the sidebar's model: the preset's must win
    at.run()
    widget(at.selectbox, "presets_selected").select("Few-shot: country to capital").run()
    at.button(key="presets_open").click().run()
    assert not at.exception, at.exception
    preset = PresetStore(folder).load("Few-shot: country to capital")
    assert [t.value for t in at.title] == ["Playground"]
    assert at.session_state["request"] == on_sandbox(preset.request)
    assert at.session_state["model"] == preset.request.model  # the sidebar follows the preset
    assert any("Loaded “Few-shot: country to capital” from the Presets page" in s for s in texts(at.success))
    # The Playground's editors show the preset: its messages and its parameters.
    shown = [t.value for t in at.text_area if t.key and t.key.startswith(("msg_text_", "msg_system"))]
    assert shown == [m["content"] for m in preset.request.to_wire()["messages"]]
    assert json.loads(widget(at.text_area, "request_json").value) == on_sandbox(preset.request).to_wire()
    assert widget(at.number_input, "p_temperature").value == preset.request.temperature


def test_a_broken_file_in_the_folder_is_reported(folder: Path) -> None:
    (folder / "oops.json").write_bytes(b"\xff\xfe not json")
    at = page()
    assert any("oops.json" in w and "not UTF-8" in w for w in texts(at.warning))
    assert len(widget(at.selectbox, "presets_selected").options) == len(list(folder.glob("*.json"))) - 1


# --- the Playground's preset bar ------------------------------------------------------------

START = ChatRequest.from_wire({
    "model": LOCAL_MODEL, "temperature": 0.2,
    "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Name a {{thing}}."}]})


def playground(share_token: str | None = None) -> AppTest:
    """The Playground page (through app.py) with START as its request."""
    at = app_test("playground.py")
    at.session_state["request"] = START
    if share_token is not None:
        at.query_params["preset"] = share_token
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Playground"]
    return at


def on_sandbox(request: ChatRequest) -> ChatRequest:
    """`request` as the Playground holds it on the sandbox: its token limit in max_tokens, the field
    the sandbox reads (issue 22: the form, the JSON view and Get code show the field sent)."""
    return with_token_limit_field(request, "max_tokens")


def shown_request(at: AppTest) -> dict:
    """The request as the Playground's JSON view shows it."""
    return json.loads(widget(at.text_area, "request_json").value)


def test_save_as_preset_from_the_playground(folder: Path) -> None:
    at = playground()
    widget(at.text_input, "preset_save_name").input("My fruit prompt")
    widget(at.text_input, "preset_save_description").input("Names things")
    widget(at.text_input, "preset_save_tags").input("fruit, demo, ")
    at.button(key="preset_save").click().run()
    assert any("Saved preset" in s for s in texts(at.success))
    text = (folder / "my-fruit-prompt.json").read_text(encoding="utf-8")
    preset = Preset.model_validate_json(text)
    assert text == preset_to_json(preset)
    assert preset.tags == ["fruit", "demo"] and preset.description == "Names things"
    assert [v.name for v in preset.variables] == ["thing"]
    assert preset.request.to_wire() == shown_request(at)
    # The same name again, without overwrite: refused, the file is unchanged.
    at.button(key="preset_save").click().run()
    assert any("already exists" in e for e in texts(at.error))
    assert (folder / "my-fruit-prompt.json").read_text(encoding="utf-8") == text


def test_save_refuses_a_request_carrying_a_key(folder: Path) -> None:
    at = playground()
    at.session_state["request"] = ChatRequest.from_wire({
        "model": LOCAL_MODEL, "messages": [{"role": "user", "content": "hi"}],
        "extra_headers": {"Authorization": "Bearer sk-" + "abcdefghijklmnopqrstuvwxyz"}})
    widget(at.text_input, "preset_save_name").input("Leaky")
    at.button(key="preset_save").click().run()
    assert any("request.extra_headers.Authorization" in e for e in texts(at.error))
    assert not (folder / "leaky.json").exists()


def test_save_over_a_file_changed_on_disk_is_refused(folder: Path) -> None:
    at = playground()
    widget(at.selectbox, "preset_load_name").select("Creative: seeded poem")
    at.button(key="preset_load").click().run()
    assert shown_request(at)["seed"] == 42
    assert widget(at.text_input, "preset_save_name").value == "Creative: seeded poem"
    # Someone else changes the file.
    path = folder / "creative-seeded-poem.json"
    theirs = path.read_text(encoding="utf-8").replace('"seed": 42', '"seed": 99')
    path.write_text(theirs, encoding="utf-8")
    widget(at.checkbox, "preset_save_overwrite").check()
    at.button(key="preset_save").click().run()
    assert any("changed on disk" in e and "new name" in e for e in texts(at.error))
    assert path.read_text(encoding="utf-8") == theirs
    widget(at.text_input, "preset_save_name").input("Creative: my version")
    at.button(key="preset_save").click().run()
    assert any("Saved preset" in s for s in texts(at.success))
    assert PresetStore(folder).load("Creative: my version").request.seed == 42
    # Unchanged since load: overwrite goes through.
    widget(at.selectbox, "preset_load_name").select("Creative: my version")
    at.button(key="preset_load").click().run()
    widget(at.text_input, "preset_save_description").input("second edit")
    at.button(key="preset_save").click().run()
    assert PresetStore(folder).load("Creative: my version").description == "second edit"


def test_load_preset_keeps_its_variables_as_placeholders(folder: Path) -> None:
    at = playground()
    widget(at.selectbox, "preset_load_name").select("Explain a topic (variables)")
    at.button(key="preset_load").click().run()
    assert any("set their values under **Variables**" in i for i in texts(at.info))
    assert widget(at.text_area, "variable_audience").value == "a 10 year old"  # the default, prefilled
    assert widget(at.text_area, "variable_topic").value == ""  # no default: Run waits for it
    assert at.button(key="run").disabled
    widget(at.text_area, "variable_topic").input("rainbows").run()
    assert not at.button(key="run").disabled
    # the request keeps its template; the values live beside it
    assert shown_request(at)["messages"][1]["content"] == "Explain {{topic}} to {{audience}}."
    assert shown_request(at)["seed"] == 7
    assert widget(at.text_area, "variable_topic").value == "rainbows"


def test_resaving_a_loaded_template_keeps_its_variable_defaults(folder: Path) -> None:
    at = playground()
    widget(at.selectbox, "preset_load_name").select("Explain a topic (variables)")
    at.button(key="preset_load").click().run()
    widget(at.text_area, "variable_topic").input("rainbows").run()  # a value to run with, not saved
    widget(at.text_input, "preset_save_name").input("Explain, my copy")
    at.button(key="preset_save").click().run()
    saved = PresetStore(folder).load("Explain, my copy")
    original = PresetStore(folder).load("Explain a topic (variables)")
    assert saved.variables == original.variables and saved.request == on_sandbox(original.request)


def test_a_share_link_loads_into_the_playground(folder: Path) -> None:
    preset = PresetStore(folder).load("Creative: seeded poem")
    at = playground(to_share_token(preset))
    assert shown_request(at) == on_sandbox(preset.request).to_wire()
    assert any("from the share link" in s for s in texts(at.success))


def test_a_tampered_share_link_shows_an_error_and_loads_nothing(folder: Path) -> None:
    preset = PresetStore(folder).load("Creative: seeded poem")
    token = to_share_token(preset)
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    at = playground(tampered)
    assert any("could not be loaded" in e for e in texts(at.error))
    assert shown_request(at)["messages"][0]["content"] == "Be terse."


def test_a_share_link_with_variables_shows_their_fields(folder: Path) -> None:
    preset = PresetStore(folder).load("Explain a topic (variables)")
    at = playground(to_share_token(preset))
    assert shown_request(at)["messages"][1]["content"] == "Explain {{topic}} to {{audience}}."
    # the label is also the field's accessible name: the bare variable name, no markdown escapes
    assert widget(at.text_area, "variable_topic").label == "topic (required)"
    assert widget(at.text_area, "variable_audience").label == "audience"
    widget(at.text_area, "variable_topic").input("tides").run()
    assert shown_request(at)["messages"][1]["content"] == "Explain {{topic}} to {{audience}}."
    assert not at.button(key="run").disabled
