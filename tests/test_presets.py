"""Presets: file format, store, secrets, variables, share links, shipped examples."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import zlib
from pathlib import Path

import jsonschema
import pytest

from playground.client.endpoint import LOCAL_MODEL
from playground.client.schema import ChatRequest
from playground.presets import (
    MAX_FILE_BYTES,
    MAX_TOKEN_CHARS,
    EndpointHint,
    MissingVariableError,
    Preset,
    PresetConflictError,
    PresetExistsError,
    PresetFileError,
    PresetNameError,
    PresetNotFound,
    PresetStore,
    SecretFoundError,
    ShareLinkError,
    ShareLinkTooLarge,
    Variable,
    fill_variables,
    from_share_token,
    parse_preset_bytes,
    preset_to_json,
    read_variables,
    schema_text,
    slugify,
    to_share_token,
    variables_in,
)
from playground.presets.sharelink import encode_token

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "presets"


def every_field_request() -> ChatRequest:
    """A request with every seed field set, extras at the top and nested, and each message role."""
    return ChatRequest.from_wire({
        "model": "openai/gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief. Café ünïcode ✓", "name": "sys"},
            {"role": "developer", "content": "dev note"},
            {"role": "user", "content": [{"type": "text", "text": "Hello {{who}}"},
                                         {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": 1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42", "cache_hint": {"ttl": 5}},
        ],
        "audio": {"voice": "alloy", "format": "wav"},
        "frequency_penalty": -1.5,
        "function_call": {"name": "lookup"},
        "functions": [{"name": "lookup", "parameters": {"type": "object"}}],
        "logit_bias": {"50256": -100, "13": 2.5},
        "logprobs": True,
        "max_completion_tokens": 64,
        "max_tokens": 128,
        "metadata": {"team": "evals"},
        "modalities": ["text", "audio"],
        "n": 2,
        "parallel_tool_calls": False,
        "prediction": {"type": "content", "content": "predicted"},
        "presence_penalty": 0.5,
        "reasoning_effort": "high",
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "strict": True, "schema": {
            "type": "object", "properties": {"password": {"type": "string"}, "b": {"type": "integer"}}}}},
        "seed": 1234,
        "stop": ["\n\n", "END"],
        "store": False,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.7,
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "tools": [{"type": "function", "function": {
            "name": "lookup", "description": "d",
            "parameters": {"type": "object", "properties": {}}, "strict": True,
        }}],
        "top_k": 40,
        "top_logprobs": 5,
        "top_p": 0.9,
        "min_p": 0.05,
        "chat_template_kwargs": {"enable_thinking": False, "nested": [1, {"deep": None}]},
        "repetition_penalty": None,
    })


def full_preset(name: str = "Everything: all fields") -> Preset:
    return Preset(schema_version=1, name=name, description="Every field, for the round trip.",
                  tags=["test", "round-trip"], endpoint=EndpointHint(kind="sgp", model="openai/gpt-4o"),
                  variables=[Variable(name="who", default="world", description="whom to greet")],
                  request=every_field_request())


def small_preset(name: str = "Small", text: str = "Hi there", **request: object) -> Preset:
    chat_request = ChatRequest.from_wire({"model": LOCAL_MODEL, "messages": [{"role": "user", "content": text}],
                                          **request})
    return Preset.new(name, chat_request, description="d", tags=["t"], endpoint_kind="local")


@pytest.fixture
def store(tmp_path: Path) -> PresetStore:
    return PresetStore(tmp_path / "presets")


# --- format ---------------------------------------------------------------------------------


def test_round_trip_keeps_every_field(store: PresetStore) -> None:
    preset = full_preset()
    text = preset_to_json(preset)
    again = parse_preset_bytes(text.encode("utf-8"), "x.json")
    assert again == preset
    assert again.request.to_wire() == preset.request.to_wire()
    assert again.request.extra_fields["chat_template_kwargs"] == {
        "enable_thinking": False, "nested": [1, {"deep": None}]}
    assert "repetition_penalty" in again.request.to_wire()  # an explicit null extra survives
    assert again.request.messages[4].model_extra == {"cache_hint": {"ttl": 5}}
    assert preset_to_json(again) == text
    store.save(preset)
    assert store.load(preset.name) == preset
    assert store.path_for(preset.name).read_text(encoding="utf-8") == text


def test_canonical_json_layout() -> None:
    text = preset_to_json(full_preset())
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert list(json.loads(text)) == [
        "schema_version", "name", "description", "tags", "endpoint", "variables", "request"]
    assert '\n  "name": ' in text and '\n    "kind": ' in text  # two-space indent
    assert "Café ünïcode ✓" in text  # readable in a git diff
    request_keys = list(json.loads(text)["request"])
    assert request_keys[:2] == ["messages", "model"]
    assert request_keys[-3:] == ["chat_template_kwargs", "min_p", "repetition_penalty"]  # extras last, sorted


def test_new_declares_the_variables_and_hint_has_no_secret_fields() -> None:
    preset = small_preset(text="Translate {{text}} into {{ language }}; again: {{text}}")
    assert [v.name for v in preset.variables] == ["text", "language"]
    assert preset.endpoint == EndpointHint(kind="local", model=LOCAL_MODEL)
    with pytest.raises(ValueError, match="api_key"):
        EndpointHint.model_validate({"kind": "sgp", "api_key": "k"})
    with pytest.raises(ValueError, match="account_id"):
        EndpointHint.model_validate({"kind": "sgp", "account_id": "acct"})


# --- bad files ------------------------------------------------------------------------------

GOOD = preset_to_json(small_preset()).encode("utf-8")


def _edited(**changes: object) -> bytes:
    data = json.loads(GOOD)
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode("utf-8")


def _no_model() -> bytes:
    data = json.loads(GOOD)
    del data["request"]["model"]
    return json.dumps(data).encode("utf-8")


BAD_FILES = {
    "truncated.json": (GOOD[: len(GOOD) // 2], "ends too early"),
    "empty.json": (b"", "ends too early"),
    "garbage.json": (b"{'name': 1}", "not valid JSON"),
    "version.json": (_edited(schema_version=7), "unknown schema_version 7"),
    "no-version.json": (_edited(schema_version=None), "missing field 'schema_version'"),
    "no-name.json": (_edited(name=None), "missing field 'name'"),
    "no-request.json": (_edited(request=None), "missing field 'request'"),
    "no-model.json": (_no_model(), "missing field 'request.model'"),
    "bad-range.json": (_edited(request={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                        "temperature": 3}), "temperature"),
    "latin1.json": (GOOD.replace(b"Hi there", "Hi thère".encode("latin-1")), "not UTF-8"),
    "huge.json": (GOOD[:-2] + b" " * MAX_FILE_BYTES + b"}\n", "over 1 MB"),
    "array.json": (b"[1, 2]", "expected a JSON object"),
    "unknown-field.json": (_edited(colour="red"), "colour"),
}


@pytest.mark.parametrize("filename", sorted(BAD_FILES))
def test_each_bad_file_is_refused_with_its_reason(filename: str) -> None:
    data, reason = BAD_FILES[filename]
    with pytest.raises(PresetFileError) as caught:
        parse_preset_bytes(data, filename)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(filename + ": ")


def test_a_bom_is_accepted() -> None:
    assert parse_preset_bytes(b"\xef\xbb\xbf" + GOOD, "bom.json").name == "Small"


def test_import_many_files_keeps_the_good_and_names_the_bad(store: PresetStore) -> None:
    goods = [(f"good{i}.json", preset_to_json(small_preset(f"Good {i}")).encode()) for i in range(2)]
    bads = [(name, data) for name, (data, _) in BAD_FILES.items()]
    secret = ("secret.json", _edited(request={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                              "api_key": "abc123"}))
    escape = ("escape.json", _edited(name="../../outside"))
    report = store.import_files([goods[0], *bads, secret, escape, goods[1]])
    assert report.imported == ["Good 0", "Good 1"]
    reasons = dict(report.errors)
    assert sorted(reasons) == sorted([*BAD_FILES, "secret.json", "escape.json"])
    assert "looks like a path" in reasons["escape.json"]
    assert not (store.folder.parent / "outside.json").exists()
    for name, (_, reason) in BAD_FILES.items():
        assert reason in reasons[name]
    assert "request.api_key" in reasons["secret.json"]
    assert sorted(p.name for p in store.list()) == ["Good 0", "Good 1"]
    again = store.import_files([goods[0]])
    assert again.imported == [] and "already exists" in again.errors[0][1]
    assert store.import_files([goods[0]], overwrite=True).imported == ["Good 0"]


# --- store ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "../../etc/passwd", "/etc/passwd", "a/b", "..\\x", "C:\\temp\\x",
                                  "~/x", ".hidden", "..", "x\x00y", "   "])
def test_names_that_escape_the_folder_are_refused(store: PresetStore, tmp_path: Path, name: str) -> None:
    with pytest.raises(PresetNameError):
        store.path_for(name)
    with pytest.raises(PresetNameError):
        store.load(name)
    with pytest.raises((PresetNameError, ValueError)):
        store.save(small_preset().model_copy(update={"name": name}))
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x").exists()


def test_slugs() -> None:
    assert slugify("Few-shot: Capitals!") == "few-shot-capitals"
    assert slugify("  Ünïcödé  name ") == "unicode-name"
    assert slugify("日本語").startswith("preset-")
    assert len(slugify("x" * 500)) <= 80


def test_save_list_load_rename_duplicate_delete(store: PresetStore) -> None:
    assert store.list() == []
    store.save(small_preset("Beta"))
    store.save(small_preset("alpha"))
    (store.folder / "broken.json").write_text("{", encoding="utf-8")
    (store.folder / "preset.schema.json").write_text("{}", encoding="utf-8")
    presets, problems = store.scan()
    assert [p.name for p in presets] == ["alpha", "Beta"]
    assert problems == [("broken.json", problems[0][1])] and "ends too early" in problems[0][1]
    with pytest.raises(PresetExistsError, match="already exists"):
        store.save(small_preset("Beta", text="other"))
    store.save(small_preset("Beta", text="other"), overwrite=True)
    assert store.load("Beta").request.messages[0].content == "other"
    assert store.load("beta").name == "Beta"  # the file name is a slug
    copy = store.duplicate("Beta")
    assert copy.name == "Beta (copy)" and store.duplicate("Beta").name == "Beta (copy 2)"
    renamed = store.rename("Beta (copy)", "Gamma")
    assert renamed.name == "Gamma" and not store.exists("Beta (copy)") and store.load("Gamma").request == copy.request
    with pytest.raises(PresetExistsError):
        store.rename("Gamma", "alpha")
    store.rename("Gamma", "GAMMA")  # same file, new spelling
    assert store.load("gamma").name == "GAMMA"
    store.delete("GAMMA")
    with pytest.raises(PresetNotFound):
        store.load("GAMMA")
    with pytest.raises(PresetNotFound):
        store.delete("GAMMA")
    assert not list(store.folder.glob("*.tmp"))


def test_a_listing_follows_files_edited_in_place_by_hand(store: PresetStore) -> None:
    store.save(small_preset("Edited", text="first"))
    assert [m.content for m in store.list()[0].request.messages] == ["first"]
    path = store.path_for("Edited")
    with path.open("w", encoding="utf-8") as handle:  # same file (inode), new text: an editor's save
        handle.write(preset_to_json(small_preset("Edited", text="second, longer")))
    assert [m.content for m in store.list()[0].request.messages] == ["second, longer"]
    path.write_text("{", encoding="utf-8")
    presets, problems = store.scan()
    assert presets == [] and [name for name, _ in problems] == [path.name]
    path.unlink()
    assert store.scan() == ([], [])


def test_changed_on_disk_is_not_silently_overwritten(store: PresetStore) -> None:
    store.save(small_preset("Shared"))
    mine, digest = store.load_with_hash("Shared")
    # A teammate's change arrives (git pull, another session).
    theirs = small_preset("Shared", text="their edit")
    store.path_for("Shared").write_text(preset_to_json(theirs), encoding="utf-8")
    edited = mine.model_copy(update={"description": "my edit"})
    with pytest.raises(PresetConflictError, match="changed on disk since you loaded it.*new name"):
        store.save(edited, expected_hash=digest)
    with pytest.raises(PresetConflictError):
        store.save(edited, overwrite=True, expected_hash=digest)
    assert store.load("Shared") == theirs  # theirs kept
    store.save(edited.model_copy(update={"name": "Shared (mine)"}))  # saved under a new name
    assert store.load("Shared (mine)").description == "my edit"
    # Unchanged since load: the save goes through and returns the next hash.
    _, digest = store.load_with_hash("Shared")
    digest2 = store.save(theirs.model_copy(update={"description": "v2"}), expected_hash=digest)
    assert digest2 == store.current_hash("Shared") != digest
    store.path_for("Shared").unlink()
    with pytest.raises(PresetConflictError, match="deleted"):
        store.save(theirs, expected_hash=digest2)


def test_concurrent_saves_from_two_threads_leave_a_valid_file(store: PresetStore) -> None:
    versions = [small_preset("Race", text=f"writer {w} " + "x" * 20_000) for w in range(2)]
    texts = {preset_to_json(v) for v in versions}
    errors: list[BaseException] = []
    start = threading.Barrier(3)
    first_file = threading.Event()

    def writer(preset: Preset) -> None:
        try:
            start.wait()
            for _ in range(40):
                store.save(preset, overwrite=True)
                first_file.set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def reader() -> None:
        start.wait()
        assert first_file.wait(10), "no writer saved the file"
        path = store.path_for("Race")
        for _ in range(200):  # while the writers go on: every read is a whole file
            assert path.read_text(encoding="utf-8") in texts  # never half a file, never missing

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    reader()
    for t in threads:
        t.join()
    assert not errors
    assert store.path_for("Race").read_text(encoding="utf-8") in texts
    assert store.load("Race") in versions
    assert not list(store.folder.glob(".*tmp"))


def test_two_threads_saving_over_the_same_loaded_version_one_wins(store: PresetStore) -> None:
    store.save(small_preset("Both"))
    _, digest = store.load_with_hash("Both")
    results: list[str] = []
    start = threading.Barrier(2)

    def save(text: str) -> None:
        start.wait()
        try:
            store.save(small_preset("Both", text=text), expected_hash=digest)
            results.append("saved")
        except PresetConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=save, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict", "saved"]


def test_default_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLAYGROUND_PRESETS_DIR", str(tmp_path / "team"))
    assert PresetStore().folder == tmp_path / "team"
    monkeypatch.delenv("PLAYGROUND_PRESETS_DIR")
    assert PresetStore().folder == SHIPPED
    assert (SHIPPED.parent / "pyproject.toml").exists()


# --- secrets --------------------------------------------------------------------------------

SECRET_REQUESTS = {
    "request.api_key": {"api_key": "abc123"},
    "request.extra_headers.Authorization": {"extra_headers": {"Authorization": "Bearer abcdefghijkl"}},
    "request.headers.x-api-key": {"headers": {"x-api-key": "k-123"}},
    "request.metadata.openai_api_key": {"metadata": {"openai_api_key": "whatever"}},
    "request.chat_template_kwargs.auth.access_token": {"chat_template_kwargs": {"auth": {"access_token": "t0k"}}},
    "request.messages[0].content": {
        "messages": [{"role": "user", "content": "use sk-proj-ABCDEFGHIJKLMNOPQRSTUV please"}]},
    "request.extra_body.x_selected_account_id": {"extra_body": {"x_selected_account_id": "acct_1"}},
}


@pytest.mark.parametrize("field", sorted(SECRET_REQUESTS))
def test_secret_bearing_presets_are_refused_on_save_import_and_share(store: PresetStore, field: str) -> None:
    body = {"model": LOCAL_MODEL, "messages": [{"role": "user", "content": "hi"}], **SECRET_REQUESTS[field]}
    preset = Preset.new("Leaky", ChatRequest.from_wire(body))
    with pytest.raises(SecretFoundError) as caught:
        store.save(preset)
    assert field in str(caught.value)
    assert not store.exists("Leaky")
    data = json.loads(GOOD)
    data["request"] = body
    with pytest.raises(PresetFileError) as caught:
        parse_preset_bytes(json.dumps(data).encode(), "leaky.json")
    assert field in caught.value.reason and "secret" in caught.value.reason
    with pytest.raises(SecretFoundError):
        to_share_token(preset)
    forged = encode_token(json.dumps(data))  # a well-formed link that carries a key
    with pytest.raises(ShareLinkError, match="secret"):
        from_share_token(forged)


def test_an_endpoint_hint_with_a_key_is_refused_on_import() -> None:
    data = json.loads(GOOD)
    data["endpoint"] = {"kind": "sgp", "model": "m", "api_key": "abc"}
    with pytest.raises(PresetFileError, match=r"endpoint\.api_key"):
        parse_preset_bytes(json.dumps(data).encode(), "hint.json")


def test_harmless_look_alikes_are_not_secrets(store: PresetStore) -> None:
    preset = full_preset()  # a json_schema property named "password", max_tokens, top_logprobs
    preset = preset.model_copy(update={"request": ChatRequest.from_wire({
        **preset.request.to_wire(),
        "messages": [{"role": "user", "content": "Explain what an api_key and an Authorization header are."}]})})
    store.save(preset)
    assert from_share_token(to_share_token(preset)) == preset


# --- variables ------------------------------------------------------------------------------


def test_variables_are_found_and_filled() -> None:
    request = every_field_request()
    assert variables_in(request) == ["who"]
    filled = fill_variables(request, {"who": "Ada {{not_a_var}}"})
    assert filled.messages[2].content[0].text == "Hello Ada {{not_a_var}}"
    assert filled.messages[2].content[1].model_extra == request.messages[2].content[1].model_extra
    assert {k: v for k, v in filled.to_wire().items() if k != "messages"} == \
        {k: v for k, v in request.to_wire().items() if k != "messages"}
    plain = small_preset().request
    assert variables_in(plain) == [] and fill_variables(plain, {}) == plain


def test_a_missing_variable_is_an_error_before_sending() -> None:
    request = small_preset(text="{{a}} and {{ b }} and {{a}}").request
    with pytest.raises(MissingVariableError, match=r"\{\{b\}\}") as caught:
        fill_variables(request, {"a": "x"})
    assert caught.value.names == ["b"]
    with pytest.raises(MissingVariableError) as caught:
        fill_variables(request, {"a": None})
    assert caught.value.names == ["a", "b"]
    assert fill_variables(request, {"a": "1", "b": ""}).messages[0].content == "1 and  and 1"


def test_read_variables_undoes_fill_variables() -> None:
    template = small_preset(text="Is {{a}} like {{ b }}? Say {{a}}. (.*)").request
    for values in ({"a": "x", "b": "y"}, {"a": "", "b": "a.b*c"}, {"a": "two\nlines", "b": "{{a}}"}):
        assert read_variables(template, fill_variables(template, values)) == values
    # not made from it: other text, the same variable two ways, another message count
    assert read_variables(template, small_preset(text="Is x like y?").request) is None
    assert read_variables(template, small_preset(text="Is x like y? Say z. (.*)").request) is None
    assert read_variables(template, every_field_request()) is None
    plain = small_preset().request
    assert read_variables(plain, plain) == {}


def test_preset_defaults_cover_declared_and_used_variables() -> None:
    preset = Preset.new("V", small_preset(text="{{topic}} for {{audience}}").request,
                        variables=[Variable(name="audience", default="kids"), Variable(name="unused", default="u")])
    assert preset.defaults() == {"audience": "kids", "unused": "u", "topic": None}
    with pytest.raises(ValueError, match="variable name"):
        Variable(name="not valid")


# --- share links ----------------------------------------------------------------------------


def test_share_token_round_trip() -> None:
    preset = full_preset()
    token = to_share_token(preset)
    assert token.startswith("pg1.") and len(token) <= MAX_TOKEN_CHARS
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert from_share_token(token) == preset
    assert from_share_token(f"  {token}\n") == preset


def _flip(text: str, i: int) -> str:
    return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]


def test_tampered_and_garbled_tokens_load_nothing() -> None:
    token = to_share_token(full_preset())
    prefix, payload, check = token.split(".")
    cases = [_flip(token, len(prefix) + 1 + i) for i in range(0, len(payload), max(1, len(payload) // 25))]
    cases += [f"{prefix}.{payload}.{_flip(check, 0)}", token[:-5], token[: len(token) // 2], f"{prefix}.{payload}",
              f"{prefix}.{payload[:-3]}.{check}", "pg1.!!!.abc", "hello", "", "pg9.abc.def", "pg1..", token + ".x",
              f"{prefix}.{payload}{payload}.{check}"]
    for bad in cases:
        with pytest.raises(ShareLinkError):
            from_share_token(bad)
    with pytest.raises(ShareLinkError, match="integrity"):
        from_share_token(f"{prefix}.{payload}.{_flip(check, 0)}")
    with pytest.raises(ShareLinkError, match="pg9"):
        from_share_token("pg9.abc.def")


def _repack(token: str, edit, recompute_check: bool) -> str:
    """The token with its JSON edited by `edit(dict)`, deflated and encoded as the codec does
    (raw deflate, level 9, base64url without padding); its check kept, or recomputed."""
    prefix, payload, check = token.split(".")
    data = json.loads(zlib.decompress(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)), -15))
    edit(data)
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    new_payload = base64.urlsafe_b64encode(packer.compress(text) + packer.flush()).decode().rstrip("=")
    if recompute_check:
        check = base64.urlsafe_b64encode(hashlib.sha256(text).digest()[:6]).decode().rstrip("=")
    return f"{prefix}.{new_payload}.{check}"


def test_an_edited_token_fails_the_check_and_one_rechecked_loads() -> None:
    """The check is a checksum against garbling, not a signature. A payload that decompresses
    cleanly to valid JSON with one field changed, under the old check, is refused by the check
    comparison itself (not the decompressor). The same edit with the check recomputed loads:
    anyone can make a valid link, so a link says nothing about who made it."""
    preset = full_preset()
    token = to_share_token(preset)

    def hotter(data: dict) -> None:
        assert data["request"]["temperature"] == 0.7  # the field this test changes is there
        data["request"]["temperature"] = 1.9

    with pytest.raises(ShareLinkError) as refused:
        from_share_token(_repack(token, hotter, recompute_check=False))
    assert str(refused.value) == ("This share link was changed or damaged (its integrity check fails), "
                                  "so nothing was loaded. Ask for the link again.")

    rechecked = from_share_token(_repack(token, hotter, recompute_check=True))
    assert rechecked.request.temperature == 1.9
    assert rechecked.model_copy(update={"request": preset.request}) == preset  # nothing else changed


def test_too_big_for_a_link_says_to_send_the_file() -> None:
    import random

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    preset = small_preset(text=" ".join(words))
    with pytest.raises(ShareLinkTooLarge, match="file"):
        to_share_token(preset)
    with pytest.raises(ShareLinkTooLarge):
        from_share_token("pg1." + "A" * MAX_TOKEN_CHARS + ".abcdefgh")


def test_a_token_that_inflates_past_the_limit_is_refused() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = packer.compress(b" " * (MAX_FILE_BYTES * 3)) + packer.flush()
    token = "pg1." + base64.urlsafe_b64encode(bomb).decode().rstrip("=") + ".AAAAAAAA"
    assert len(token) < MAX_TOKEN_CHARS
    with pytest.raises(ShareLinkError, match="1 MB"):
        from_share_token(token)


# --- shipped presets and the schema file ----------------------------------------------------


def shipped_files() -> list[Path]:
    return sorted(p for p in SHIPPED.glob("*.json") if p.name != "preset.schema.json")


def test_the_schema_file_is_not_stale() -> None:
    on_disk = (SHIPPED / "preset.schema.json").read_text(encoding="utf-8")
    assert on_disk == schema_text(), "presets/preset.schema.json is stale: run `python -m playground.presets.model`"
    jsonschema.Draft202012Validator.check_schema(json.loads(on_disk))


def test_the_shipped_presets_all_validate() -> None:
    files = shipped_files()
    assert 4 <= len(files) <= 6
    schema = json.loads((SHIPPED / "preset.schema.json").read_text(encoding="utf-8"))
    presets = []
    for path in files:
        preset = parse_preset_bytes(path.read_bytes(), path.name)
        assert path.read_text(encoding="utf-8") == preset_to_json(preset), f"{path.name} is not canonical"
        assert path.stem == slugify(preset.name)
        assert preset.request.model == preset.endpoint.model
        if preset.endpoint.kind == "local":
            assert preset.request.model == LOCAL_MODEL
        else:  # a preset for another endpoint would have to need what only it offers (tools did, before issue 23)
            assert preset.request.tools, f"{path.name} is not for the local model"
        jsonschema.validate(json.loads(path.read_text(encoding="utf-8")), schema, cls=jsonschema.Draft202012Validator)
        assert len(to_share_token(preset)) < MAX_TOKEN_CHARS
        presets.append(preset)
    requests = [p.request for p in presets]
    assert any(sum(m.role == "assistant" for m in r.messages) >= 2 for r in requests), "a few-shot prompt"
    assert any(r.response_format and r.response_format.type == "json_schema" for r in requests), "JSON extraction"
    assert any(r.logprobs and r.top_logprobs == 5 and (r.max_completion_tokens or 99) <= 3
               for r in requests), "classifier"
    assert any(r.seed is not None and (r.temperature or 0) >= 0.8 for r in requests), "creative with a seed"
    assert any(r.tools and r.tool_choice is not None for r in requests), "tool calling"
    with_vars = [p for p in presets if p.variables]
    assert with_vars and all(set(variables_in(p.request)) <= {v.name for v in p.variables} for p in presets)


# --- diff -----------------------------------------------------------------------------------


def test_diff_rows_and_escaped_word_highlights() -> None:
    from playground.presets.diff import message_rows, param_rows
    from playground.ui.presets.diff_view import ADDED_STYLE, REMOVED_STYLE, word_diff_html

    a = small_preset("A", text="Write a <b>poem</b> now", temperature=0.5)
    b = small_preset("B", text="Write a <i>song</i> now", seed=3)
    b = b.model_copy(update={"request": ChatRequest.from_wire({**b.request.to_wire(), "messages": [
        *b.request.to_wire()["messages"], {"role": "assistant", "content": "ok"}]})})
    rows = message_rows(a, b)
    assert [r.changed for r in rows] == [True, True] and rows[1].role_a is None and rows[1].text_b == "ok"
    params = {r.field: r for r in param_rows(a, b)}
    assert params["temperature"].changed and params["temperature"].b == "(unset)"
    assert params["seed"].a == "(unset)" and params["seed"].b == "3"
    assert not params["model"].changed and not params["(preset) tags"].changed
    left, right = word_diff_html(rows[0].text_a, rows[0].text_b)
    assert "<b>" not in left and "&#60;b&#62;poem&#60;/b&#62;" in left
    assert left.startswith("Write a ") and REMOVED_STYLE in left and ADDED_STYLE in right
    assert word_diff_html("same text", "same text") == ("same text", "same text")


def test_saved_files_have_the_usual_permissions(store: PresetStore) -> None:
    """A team library reviewed in git: files as any editor writes them (the umask decides), not
    mkstemp's private 0600."""
    import os

    old = os.umask(0o022)
    try:
        store.save(Preset.new("Mode check", ChatRequest.from_wire(
            {"model": LOCAL_MODEL, "messages": [{"role": "user", "content": "hi"}]})))
    finally:
        os.umask(old)
    assert os.stat(store.path_for("Mode check")).st_mode & 0o777 == 0o644
