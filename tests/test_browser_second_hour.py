"""Browser proof of issue 22's bullets that no other browser test drives (the audit is in the
module's report): each test does what the user did, in headless Chromium against one
`streamlit run app.py`, and asserts what the page shows and what the scripted servers received.

The app has three endpoints: the Local sandbox and SGP (SGP_API_KEY, SGP_BASE_URL) are both the
conftest's `server` (told apart by the x-api-key header SGP sends), and "Other", an
[endpoints.Other] table in a secrets file (STREAMLIT_SECRETS_FILES), is a second scripted server
listing one model of its own and reading its token limit from `token_limit_field`.
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from tests.browser_support import (
    RUN_BUTTON,
    USER_BOX,
    choose,
    dataframe_text,
    expect_texts,
    open_page,
    open_tab,
    put_preset,
    run_prompt,
    screenshot,
    streamlit_app,
    wait_answer,
    wait_idle,
)
from tests.scripted_server import Reply, ScriptedServer
from tests.support import chat_requests, wait_for

pytestmark = pytest.mark.browser

SGP_KEY = "sgp-second-hour-key"
OTHER_MODEL = "other/model-x"
SCRIPTED_MODEL = "scripted/scripted-model"


@pytest.fixture(scope="module")
def other():
    """A second OpenAI-compatible server: its own model list, its own chat answers."""
    with ScriptedServer() as scripted:
        scripted.route("/v1/models", Reply.json(200, {"object": "list", "data": [{"id": OTHER_MODEL}]}))
        scripted.default = Reply.stream_text(["from", " other"])
        yield scripted


MADE_ELSEWHERE = {"schema_version": 1, "name": "Made elsewhere",
                  "endpoint": {"kind": "openai", "model": "openai/gpt-4o-mini"},
                  "request": {"model": "openai/gpt-4o-mini", "stream": True,
                              "messages": [{"role": "user", "content": "Where is the weather?"}]}}



def switch_preset(letter: str) -> dict:
    return {"schema_version": 1, "name": f"Switch {letter}", "variables": [{"name": "word", "default": "x"}],
            "request": {"model": SCRIPTED_MODEL, "stream": True,
                        "messages": [{"role": "system", "content": f"You are preset {letter}."},
                                     {"role": "user", "content": "Say {{word}}."}]},
            "checks": [{"kind": "equals", "value": "{{expected}}"}]}


SAKURA_PRESET = {"schema_version": 1, "name": "Sakura logprobs",
                 "request": {"model": SCRIPTED_MODEL, "stream": True, "logprobs": True, "top_logprobs": 2,
                             "messages": [{"role": "user", "content": "What is sakura?"}]}}
EXPORTED = {"schema_version": 1, "name": "Exported with cases", "variables": [{"name": "city", "default": "Oslo"}],
            "request": {"model": SCRIPTED_MODEL, "messages": [{"role": "user", "content": "Weather in {{city}}?"}]}}
EXPORTED_CASES = "city,expected,note\nOslo,cold,\nLima,mild,\n"
PRESETS = [(MADE_ELSEWHERE, None), (switch_preset("A"), "word,expected,note\nx,yes,\ny,yes,\n"),
           (switch_preset("B"), "word,expected,note\nx,yes,\ny,yes,\n"), (SAKURA_PRESET, None),
           (EXPORTED, EXPORTED_CASES)]


@pytest.fixture(scope="module")
def app_url(server, other, app_dir):
    for preset, cases in PRESETS:  # before the app starts: every page lists them from its first run
        put_preset(app_dir, preset, cases)
    secrets = app_dir / "secrets.toml"
    secrets.write_text(f'[endpoints.Other]\nbase_url = "{other.base_url}/v1"\nauth = "bearer"\n'
                       f'api_key = "other-key"\nkind = "custom"\ntoken_limit_field = "max_completion_tokens"\n')
    env = {"SGP_API_KEY": SGP_KEY, "SGP_BASE_URL": server.base_url, "STREAMLIT_SECRETS_FILES": str(secrets)}
    with streamlit_app(app_dir, server, env=env) as base:
        yield base


@pytest.fixture(autouse=True)
def plain_answers(server):
    """Every test starts from a server that answers anything, and leaves no responder behind."""
    server.default = Reply.stream_text(["Fine", "."])
    server.respond = None
    yield
    server.respond = None


def sent(server, before: int, count: int = 1, what: str = "the request to reach the server") -> list[dict]:
    """The bodies of the next `count` chat requests `server` receives after the first `before`."""
    wait_for(lambda: len(chat_requests(server)) >= before + count, 30, what)
    return [r.json for r in chat_requests(server)[before:before + count]]


def sidebar_endpoint(page, name: str) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    choose(page, sidebar.get_by_role("combobox", name="Endpoint"), name)
    wait_idle(page)


def wait_pane_model(page, pane: int, model: str) -> None:
    """Until pane `pane`'s Model box shows `model` (a redraw can leave the old box a moment beside the new)."""
    page.wait_for_function(
        "([sel, want]) => { const boxes = [...document.querySelectorAll(sel)].filter(e => e.checkVisibility());"
        " return boxes.length === 1 && boxes[0].value === want; }",
        arg=[f"[class*='st-key-cmp-{pane}-p_model'] input", model])


def load_preset_in_playground(page, name: str) -> None:
    """The Playground's Load preset bar, as a user opens and uses it."""
    from playwright.sync_api import expect

    main = page.get_by_test_id("stMain")
    main.locator("summary").filter(has_text="Load preset").click()
    wait_idle(page)
    choose(page, main.get_by_role("combobox", name="Preset"), name)
    wait_idle(page)
    page.locator(".st-key-preset_load button").click()
    expect(page.get_by_text(f"Loaded “{name}”")).to_be_visible()
    wait_idle(page)


# --- Nothing runs that the screen does not show ----------------------------------------------------


def test_a_panes_model_follows_its_endpoint_and_the_other_server_gets_it(browser, app_url, server, other):
    """Compare: pane 1 switched to "Other" takes Other's model (not the sandbox's), Run all sends
    it there with the limit in Other's token_limit_field from its [endpoints.Other] table; back on
    the Local sandbox, the pane takes the sandbox's model again."""
    from playwright.sync_api import expect

    with open_page(browser, f"{app_url}/compare", "Compare") as page:
        try:
            wait_idle(page)
            wait_pane_model(page, 0, SCRIPTED_MODEL)
            endpoint = page.locator("[class*='st-key-cmp-0-endpoint']").get_by_role("combobox")
            choose(page, endpoint, "Other")
            wait_pane_model(page, 0, OTHER_MODEL)
            wait_idle(page)
            page.locator(".st-key-cmp-0-pgroup_length_and_stop summary").click()
            expect(page.get_by_text("The token limit is sent as max_completion_tokens: the field Other reads")
                   ).to_be_visible()
            screenshot(page, "second-hour-pane-endpoint.png", full_page=True)
            before, before_other = len(chat_requests(server)), len(chat_requests(other))
            page.get_by_role("button", name="Run all").click()
            [body] = sent(other, before_other, what="pane 1's request at Other")
            assert body["model"] == OTHER_MODEL
            assert "max_completion_tokens" in body and "max_tokens" not in body
            assert chat_requests(other)[-1].path == "/v1/chat/completions"
            [pane2] = sent(server, before, what="pane 2's request")
            assert pane2["model"] == SCRIPTED_MODEL
            # the summary's row for pane 1 names the model it ran (History records the same)
            expect(page.locator("canvas table td").filter(has_text="Pane 1 · other/model-x")).to_be_attached()
            wait_idle(page)
            page.locator("summary").filter(has_text="Setup").first.click()
            wait_idle(page)
            choose(page, endpoint, "Local sandbox")
            wait_pane_model(page, 0, SCRIPTED_MODEL)
        except Exception:
            screenshot(page, "second-hour-pane-endpoint-failure.png", full_page=True)
            raise


def load_made_elsewhere(page):
    """Load the "Made elsewhere" preset in the Playground; its warning."""
    main = page.get_by_test_id("stMain")
    main.locator("summary").filter(has_text="Load preset").click()
    wait_idle(page)
    choose(page, main.get_by_role("combobox", name="Preset"), "Made elsewhere")
    wait_idle(page)
    page.locator(".st-key-preset_load button").click()
    warning = page.get_by_test_id("stAlertContentWarning").filter(has_text="was made for")
    warning.wait_for()
    return warning


def test_a_preset_made_for_an_unconfigured_endpoint_says_so_and_runs_here(page, server):
    """A preset made for an OpenAI endpoint (none configured here) loads with a warning naming
    its endpoint and model, on the current endpoint with that endpoint's model; Run sends that
    model, not the preset's (which gave a 404)."""
    from playwright.sync_api import expect

    server.respond = lambda received: Reply.stream_text(["Here", "."])
    warning = load_made_elsewhere(page)
    expect(warning).to_contain_text("“Made elsewhere” was made for an OpenAI-compatible endpoint (model ")
    expect(warning).to_contain_text("and none is configured here. It is loaded on SGP with its model, ")
    expect(warning).to_contain_text(": Run sends it there.")
    wait_idle(page)
    assert page.locator(USER_BOX).first.input_value() == "Where is the weather?"
    screenshot(page, "second-hour-preset-elsewhere.png", full_page=True)
    before = len(chat_requests(server))
    page.locator(RUN_BUTTON).click()
    [body] = sent(server, before)
    assert body["model"] == SCRIPTED_MODEL
    wait_answer(page, "a[0].includes('Here.')", shot="second-hour-preset-elsewhere-failure.png")



def test_the_unconfigured_endpoint_warning_names_the_models_as_they_are(page):
    """The warning's model names are the model ids, character for character."""
    warning = load_made_elsewhere(page)
    wait_idle(page)
    screenshot(page, "second-hour-preset-elsewhere-names.png")
    assert warning.locator("code").all_inner_texts() == ["openai/gpt-4o-mini", SCRIPTED_MODEL]


# --- Any server's token limit -------------------------------------------------------------------


def code_text(page) -> str:
    return "\n".join(page.locator("[data-testid='stCode']").filter(visible=True).all_inner_texts())


def test_sgp_receives_max_completion_tokens_and_json_and_code_name_the_field_sent(page, server):
    """SGP (configured by its key) sends the limit as max_completion_tokens, the sandbox as
    max_tokens: the form's note, the JSON view and Get code name the same field, and the server
    receives it."""
    from playwright.sync_api import expect

    server.respond = lambda received: Reply.stream_text(["ok"])
    for endpoint, field, other_field in (("SGP", "max_completion_tokens", "max_tokens"),
                                         ("Local sandbox", "max_tokens", "max_completion_tokens")):
        if endpoint != "SGP":
            open_tab(page, "Messages", page.locator(USER_BOX).first)
            sidebar_endpoint(page, endpoint)
        expect(page.get_by_text(f"The token limit is sent as {field}: the field {endpoint} reads")).to_be_visible()
        limit = page.locator(f"[class*='st-key-p_{field}'] input").first
        limit.fill("9")
        limit.press("Tab")
        wait_idle(page)
        before = len(chat_requests(server))
        if endpoint == "SGP":
            run_prompt(page, "Say ok.")
        else:
            page.locator(RUN_BUTTON).click()
        [body] = sent(server, before)
        received = chat_requests(server)[before]
        assert body[field] == 9 and other_field not in body, body
        assert (received.headers.get("x-api-key") == SGP_KEY) == (endpoint == "SGP")
        wait_idle(page)
        box = page.locator("[class*='st-key-request_json'] textarea")
        open_tab(page, "JSON", box)
        expect(box).to_contain_text(f'"{field}": 9')
        assert f'"{other_field}"' not in box.input_value()
        open_tab(page, "Get code", page.get_by_text("The exact request below, ready to paste."))
        wait_for(lambda: f'"{field}": 9' in code_text(page), 15, f"Get code to show {field}")
        assert f'"{other_field}"' not in code_text(page)
        screenshot(page, f"second-hour-limit-{field}.png", full_page=True)


def experiments_page(page, preset: str) -> None:
    """The Experiments page on `preset`, with one variant."""
    from playwright.sync_api import expect

    box = page.get_by_role("combobox", name="Preset")
    if box.input_value() != preset:
        choose(page, box, preset)
    expect(box).to_have_value(preset)
    wait_idle(page)
    variants = page.get_by_role("spinbutton", name="Variants")
    if variants.input_value() != "1":
        variants.fill("1")
        variants.press("Tab")
        wait_idle(page)


def run_experiment(page, cells: int) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Run experiment").click()
    expect(page.get_by_text(re.compile(rf"^Finished: {cells} of {cells} request\(s\)"))).to_be_visible(
        timeout=30_000)
    wait_idle(page)


def test_experiments_runs_the_preset_switched_to_and_stars_no_variant_when_all_fail(browser, app_url, server):
    """Switch A, then the page's preset switched to Switch B: Variant 1's "Prompt from" follows it,
    every case is sent B's system prompt, and when every answer fails no variant gets the star."""
    from playwright.sync_api import expect

    server.respond = lambda received: Reply.stream_text(["no"])  # "yes" is expected: every cell fails
    with open_page(browser, f"{app_url}/experiments", "Experiments") as page:
        try:
            experiments_page(page, "Switch A")
            source = page.get_by_role("combobox", name="Prompt from")
            expect(source).to_have_value("Switch A")
            choose(page, page.get_by_role("combobox", name="Preset"), "Switch B")
            expect(source).to_have_value("Switch B")
            wait_idle(page)
            before = len(chat_requests(server))
            run_experiment(page, 2)
            bodies = sent(server, before, 2, "both cases' requests")
            assert [b["messages"][0] for b in bodies] == [{"role": "system", "content": "You are preset B."}] * 2
            summary = page.get_by_test_id("stDataFrame").filter(has=page.locator("th", has_text="pass rate")).first
            expect(summary).to_be_attached()
            rows = [row.split("\t") for row in dataframe_text(summary).splitlines()]
            best = rows[0].index("best")
            assert [row[best] for row in rows[1:]] == [""], rows  # no star for a 0% variant
            assert "★" not in dataframe_text(summary)
            summary.scroll_into_view_if_needed()
            screenshot(page, "second-hour-experiments-switched.png", full_page=True)
        except Exception:
            screenshot(page, "second-hour-experiments-switched-failure.png", full_page=True)
            raise


# --- Keep a conversation going --------------------------------------------------------------------


def boxes_js(scope: str) -> str:
    return (f"[...document.querySelectorAll('[class*=\"st-key-{scope}_box_\"] textarea')]"
            ".filter(t => t.checkVisibility()).map(t => t.value)")


def wait_boxes(page, scope: str, expected: list[str]) -> None:
    try:
        page.wait_for_function(f"(want) => JSON.stringify({boxes_js(scope)}) === JSON.stringify(want)", arg=expected)
    except Exception:
        screenshot(page, f"second-hour-{scope}-boxes-failure.png", full_page=True)
        raise


def numbered_answers(server) -> None:
    """Each chat request answered "Answer N." (N counts the requests)."""
    count = iter(range(1, 1000))
    server.respond = lambda received: Reply.stream_text(["Answer", f" {next(count)}", "."])


def test_edit_and_rerun_from_an_earlier_message(page, server):
    """The first question edited, then "Edit and rerun from here": the conversation up to it is
    sent, its new answer follows it, and what followed before is one click away (1 of 2)."""
    from playwright.sync_api import expect

    numbered_answers(server)
    run_prompt(page, "Capital of France?")
    wait_answer(page, "a[0].includes('Answer 1.')")
    page.get_by_role("button", name="Add to conversation").click()
    wait_boxes(page, "msg", ["Capital of France?", "Answer 1.", ""])
    first = page.locator("[class*='st-key-msg_box_'] textarea").first
    first.fill("Capital of Spain?")
    first.press("Tab")
    wait_idle(page)
    before = len(chat_requests(server))
    page.get_by_role("button", name="Edit and rerun from here").first.click()
    [body] = sent(server, before)
    assert body["messages"] == [{"role": "user", "content": "Capital of Spain?"}]
    wait_boxes(page, "msg", ["Capital of Spain?", "Answer 2.", ""])
    expect(page.get_by_text("2 of 2")).to_be_visible()
    wait_idle(page)
    screenshot(page, "second-hour-edit-and-rerun.png", full_page=True)
    page.locator("[class*='st-key-msg_prev_'] button").first.click()  # the answer before the edit
    wait_boxes(page, "msg", ["Capital of Spain?", "Answer 1.", ""])
    expect(page.get_by_text("1 of 2")).to_be_visible()


def test_compare_shared_conversation_adds_an_answer_and_regenerates_it(browser, app_url, server):
    """Compare: pane 1's "Add to conversation" appends its answer to the shared conversation (a
    new user message below); "Regenerate" on it runs every pane on the conversation up to it, the
    new answer added takes its place, and the old one is one click away (1 of 2)."""
    from playwright.sync_api import expect

    numbered_answers(server)
    scope = "cmp-m-shared"
    with open_page(browser, f"{app_url}/compare", "Compare") as page:
        try:
            wait_idle(page)
            shared = page.locator("summary").filter(has_text="Shared conversation")
            if not page.locator(f"[class*='st-key-{scope}_box_'] textarea").first.is_visible():
                shared.click()
            box = page.locator(f"[class*='st-key-{scope}_box_'] textarea").first
            box.fill("Name a colour.")
            box.press("Tab")
            wait_idle(page)
            before = len(chat_requests(server))
            page.get_by_role("button", name="Run all").click()
            sent(server, before, 2, "both panes' requests")
            add = page.locator(".st-key-cmp-0-add_to_conversation button").filter(visible=True).first
            expect(add).to_be_visible()
            wait_idle(page)
            pane1 = page.locator(".pg-answer").filter(visible=True).first.inner_text().strip()
            add.click()
            if not page.locator(f"[class*='st-key-{scope}_box_'] textarea").first.is_visible():
                shared.click()
            wait_boxes(page, scope, ["Name a colour.", pane1, ""])
            wait_idle(page)
            before = len(chat_requests(server))
            page.get_by_role("button", name="Regenerate").first.click()
            bodies = sent(server, before, 2, "both panes' requests again")
            assert [b["messages"] for b in bodies] == [[{"role": "user", "content": "Name a colour."}]] * 2
            # the new answers come under the panes: the one added takes the regenerated one's place
            wait_boxes(page, scope, ["Name a colour."])
            expect(add).to_be_visible()
            wait_idle(page)
            again = page.locator(".pg-answer").filter(visible=True).first.inner_text().strip()
            assert again != pane1
            add.click()
            if not page.locator(f"[class*='st-key-{scope}_box_'] textarea").first.is_visible():
                shared.click()
            wait_boxes(page, scope, ["Name a colour.", again, ""])
            expect(page.get_by_text("2 of 2")).to_be_visible()
            wait_idle(page)
            screenshot(page, "second-hour-compare-regenerate.png", full_page=True)
            page.locator(f"[class*='st-key-{scope}_prev_'] button").first.click()
            wait_boxes(page, scope, ["Name a colour.", pane1, ""])
            expect(page.get_by_text("1 of 2")).to_be_visible()
        except Exception:
            screenshot(page, "second-hour-compare-conversation-failure.png", full_page=True)
            raise


# --- Tokens read as text ----------------------------------------------------------------------------


def test_compare_shows_a_character_split_across_byte_tokens(page, server):
    """Two panes answer with a Japanese character split over two byte tokens: each pane's heatmap,
    the logprob tables and the token diff show the character, not its byte escapes; the bytes
    column holds the bytes."""
    from playwright.sync_api import expect

    from tests.test_browser_branch import japanese_stream

    server.respond = lambda received: japanese_stream()
    load_preset_in_playground(page, "Sakura logprobs")
    page.get_by_test_id("stSidebar").get_by_role("link", name="Compare").click()
    expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible()
    wait_idle(page)
    before = len(chat_requests(server))
    page.get_by_role("button", name="Run all").click()
    bodies = sent(server, before, 2, "both panes' requests")
    assert all(b["logprobs"] is True for b in bodies)
    try:
        cells = page.locator(".pg-heatmap .pg-token").filter(visible=True)  # (a folded Details holds a copy)
        expect_texts(cells, ["Sakura ", "桜", " is", " pink"] * 2)  # 4 a pane: the two byte tokens are one cell
        expect(page.get_by_text("Token diff", exact=True)).to_be_visible()
        wait_idle(page)
        tables = page.get_by_test_id("stDataFrame")
        found: dict[str, list[str]] = {}

        def drawn() -> bool:
            """Every table read once the page has drawn them all (the two token tables and the
            diff come in later redraws than the heatmaps; a table replaced while read is read again)."""
            try:
                texts = [dataframe_text(tables.nth(i)) for i in range(tables.count())]
            except Exception:  # noqa: BLE001 - detached by a redraw
                return False
            found["tokens"] = [t for t in texts if t and "bytes" in t.splitlines()[0]]
            found["diff"] = [t for t in texts if t and "token_a" in t.splitlines()[0]]
            return len(found["tokens"]) == 2 and len(found["diff"]) == 1

        wait_for(drawn, 30, "the two token tables and the token diff")
        token_tables, diff = found["tokens"], found["diff"]
        for text in [*token_tables, *diff]:
            assert "桜" in text and "\\xe6" not in text and "\\x9c" not in text, text
        assert all("桜‹1/2›" in t and "\te6 a1\t" in t and "\t9c\t" in t for t in token_tables), token_tables
        page.get_by_text("Token diff", exact=True).scroll_into_view_if_needed()
        screenshot(page, "second-hour-compare-japanese.png", full_page=True)
    except Exception:
        screenshot(page, "second-hour-compare-japanese-failure.png", full_page=True)
        raise


# --- Experiments and History at the second hour -------------------------------------------------------


def test_presets_export_downloads_the_preset_and_its_cases_in_a_zip(browser, app_url):
    from playwright.sync_api import expect

    with open_page(browser, f"{app_url}/presets", "Presets") as page:
        choose(page, page.get_by_role("combobox", name="Preset"), EXPORTED["name"])
        wait_idle(page)
        button = page.get_by_role("button", name="Export (download)")
        expect(button).to_be_visible()
        screenshot(page, "second-hour-presets-export.png")
        with page.expect_download() as download:
            button.click()
        assert download.value.suggested_filename.endswith(".zip")
        archive = zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read()))
        names = sorted(archive.namelist())
        assert names == ["exported-with-cases.cases.csv", "exported-with-cases.json"], names
        assert json.loads(archive.read("exported-with-cases.json"))["name"] == EXPORTED["name"]
        assert archive.read("exported-with-cases.cases.csv").decode().replace("\r\n", "\n") == EXPORTED_CASES
