"""Who ran what, through the app (AppTest, whose `user` stands in for what Streamlit's login puts
in st.user after an OIDC sign-in): a signed-in user's reruns carry their name and email, History
offers Mine beside Everyone, and a preset saved from the Presets page records who saved it.
Without a sign-in (AppTest's default user has no is_logged_in, as a server without [auth])
nothing is recorded and no filter is offered.

The OIDC round trip itself (st.login's redirect to a provider and back) is proved in the browser
against a scripted provider: tests/test_browser_login.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

import playground.ui.history.page  # noqa: F401  (import the package before pages/ lands on sys.path)
from playground.db.schema import presets as presets_table
from playground.db.user import User
from playground.presets import PresetStore
from playground.runs.store import RunStore
from playground.settings import runs_db_path
from tests.apptest_support import app_test, sandbox_stand_in, texts, widget
from tests.scripted_server import Reply, ScriptedServer
from tests.test_history_page import history_run, listed, open_run

ANN = {"is_logged_in": True, "name": "Ann Example", "email": "ann@example.com"}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with sandbox_stand_in(tmp_path, monkeypatch) as scripted:
        yield scripted


def history(server: ScriptedServer, user: dict | None) -> AppTest:
    at = app_test("history.py")
    if user is not None:
        at.user = user
    at.secrets["endpoints"] = {"A": {"base_url": server.base_url, "chat_path": "/a/chat"}}
    at.session_state["endpoint_name"] = "A"
    at.run()
    assert not at.exception, at.exception
    return at


def test_signed_in_history_offers_mine_and_reruns_record_the_user(server: ScriptedServer) -> None:
    store = RunStore(runs_db_path())
    anns, bos, nobodys = history_run(1), history_run(2), history_run(3)
    store.save(anns, user=User("Ann Example", "ann@example.com"), source="playground")
    store.save(bos, user=User("Bo", "bo@example.com"), source="compare")
    store.save(nobodys)  # from before anyone signed in
    at = history(server, ANN)
    assert "Ann Example" in " ".join(texts(at.caption))  # the sidebar's account line
    assert len(listed(at)) == 3  # everyone's, by default
    widget(at.get("button_group"), "hist.whose").set_value("Mine").run()
    assert not at.exception, at.exception
    assert list(listed(at)["prompt"]) == ["question 1"]

    widget(at.get("button_group"), "hist.whose").set_value("Everyone").run()
    assert len(listed(at)) == 3
    server.route("/a/chat", Reply.stream_text(["again"], delay_s=0.01))
    open_run(at, nobodys.id)  # a run of before: rerun by Ann, the new run is hers
    at.button(key="hist.rerun").click().run()
    assert not at.exception, at.exception
    newest = store.list(limit=1)[0]
    assert newest.text_preview == "again"
    assert (newest.user_name, newest.user_email) == ("Ann Example", "ann@example.com")
    assert store.count(user_email="ann@example.com") == 2


def test_without_a_sign_in_nothing_is_recorded_and_no_filter(server: ScriptedServer) -> None:
    store = RunStore(runs_db_path())
    bos = history_run(1)
    store.save(bos, user=User("Bo", "bo@example.com"))
    at = history(server, None)  # AppTest's default st.user: an email, no is_logged_in
    assert at.user.get("email") and "is_logged_in" not in at.user
    assert not [w for w in at.get("button_group") if w.key == "hist.whose"]
    assert not [b for b in at.button if b.key in ("account.login", "account.logout")]
    server.route("/a/chat", Reply.stream_text(["plain"], delay_s=0.01))
    open_run(at, bos.id)
    at.button(key="hist.rerun").click().run()
    newest = store.list(limit=1)[0]
    assert newest.text_preview == "plain" and newest.user_email is None and newest.user_name is None


def test_a_sign_in_without_an_email_has_no_mine_and_records_its_name(server: ScriptedServer) -> None:
    """Runs are told apart by email: a provider that sends only a name gives no "Mine" (which
    would list everyone's runs), and the runs still carry the name."""
    store = RunStore(runs_db_path())
    bos = history_run(1)
    store.save(bos, user=User("Bo", "bo@example.com"))
    at = history(server, {"is_logged_in": True, "name": "No Mail"})
    assert "No Mail" in " ".join(texts(at.caption))  # signed in
    assert not [w for w in at.get("button_group") if w.key == "hist.whose"]
    server.route("/a/chat", Reply.stream_text(["named"], delay_s=0.01))
    open_run(at, bos.id)
    at.button(key="hist.rerun").click().run()
    newest = store.list(limit=1)[0]
    assert (newest.text_preview, newest.user_name, newest.user_email) == ("named", "No Mail", None)


def test_a_preset_saved_by_a_signed_in_user_records_them(server: ScriptedServer, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Duplicate on the Presets page with a team database configured: the copy lands in the
    database with Ann's name; the library folder is not written."""
    library = tmp_path / "library"
    library.mkdir()
    source = Path(__file__).resolve().parents[1] / "presets"
    first = sorted(p for p in source.glob("*.json") if p.name != "preset.schema.json")[0]
    (library / first.name).write_bytes(first.read_bytes())
    database = tmp_path / "team.sqlite3"
    monkeypatch.setenv("PLAYGROUND_PRESETS_DIR", str(library))
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", f"sqlite:///{database}")
    at = app_test("presets.py")
    at.user = ANN
    at.run()
    assert not at.exception, at.exception
    at.button(key="presets_duplicate").click().run()
    assert not at.exception, at.exception
    assert sorted(p.name for p in library.iterdir()) == [first.name]
    store = PresetStore(library, database=f"sqlite:///{database}")
    with store.database._reader.connect() as conn:
        rows = conn.execute(select(presets_table.c.name, presets_table.c.user_name, presets_table.c.user_email)).all()
    assert len(rows) == 1 and rows[0][0].endswith("(copy)") and rows[0][1:] == ("Ann Example", "ann@example.com")


def test_login_configured_but_signed_out_offers_log_in_and_records_nobody(server: ScriptedServer) -> None:
    """With [auth] in the secrets and nobody signed in, st.user is {"is_logged_in": False}."""
    at = history(server, {"is_logged_in": False})
    assert [b.label for b in at.button if b.key == "account.login"] == ["Log in"]
    assert not [w for w in at.get("button_group") if w.key == "hist.whose"]  # no "Mine" without a user



def test_experiments_compares_against_mine_or_everyones_earlier_runs(server: ScriptedServer, tmp_path: Path) -> None:
    """Signed in, the Compare against picker lists everyone's earlier runs of the experiment, or
    only mine; each says who ran it."""
    import dataclasses
    import json

    from playground.experiments import ExperimentStore
    from playground.ui.experiments import state as exp_state
    from tests import test_experiments_page as pages

    (tmp_path / "presets" / "colour-of-a-thing.json").write_text(json.dumps(pages.PRESET), encoding="utf-8")
    (tmp_path / "presets" / "colour-of-a-thing.cases.csv").write_text(pages.CASES, encoding="utf-8")
    server.route(pages.PATH_A, Reply.stream_text(["Red", "."]))
    at = app_test("experiments.py")
    at.user = ANN
    at.secrets["endpoints"] = {"A": {"base_url": server.base_url, "chat_path": pages.PATH_A, "auth": "x-api-key"}}
    at.session_state["endpoint_name"] = "A"
    at.session_state["model"] = "scripted/model"
    at.run()
    pages.run_experiment(at)  # Ann's first run
    experiments = ExperimentStore(runs_db_path())
    anns = experiments.get(experiments.list()[0].id)
    assert anns.user == User("Ann Example", "ann@example.com")
    experiments.save(dataclasses.replace(anns, id="bo-run-0001", user=User("Bo", "bo@example.com"),
                                         started_at=anns.started_at + 1))
    pages.run_experiment(at)  # Ann's second: compared with Bo's, the newest finished one
    picker = widget(at.selectbox, exp_state.BASELINE_PICK)
    assert picker.value == "bo-run-0001" and len(picker.options) == 2  # the options as shown: who ran each
    assert [option.rsplit(" · by ", 1)[1] for option in picker.options] == ["Bo", "Ann Example"]
    widget(at.get("button_group"), exp_state.BASELINE_WHOSE).set_value("Mine").run()
    assert not at.exception, at.exception
    picker = widget(at.selectbox, exp_state.BASELINE_PICK)
    assert len(picker.options) == 1 and picker.options[0].endswith(f"{anns.id[:8]} · by Ann Example")
    assert picker.value == anns.id  # the comparison follows: Ann's own run
    assert any(t.startswith(f"Run {anns.id[:8]} of ") for t in texts(at.caption))
