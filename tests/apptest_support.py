"""Setup shared by the AppTest page tests (Compare, History, Presets).

- `whole_app()`: the whole app as `streamlit run app.py` runs it (page config, sidebar,
  navigation); not run yet, so a test can set secrets and session state first.
- `app_test(page)`: the same, on pages/<page>.
- `sandbox_stand_in(tmp_path, monkeypatch, models=())`: a ScriptedServer standing in for the local
  sandbox (it answers the sidebar's health check and lists `models`, (name, vendor) pairs;
  PLAYGROUND_SANDBOX_PORT points at it),
  with a fresh data folder and presets folder under tmp_path and no SGP key from the environment.
- `capture_downloads(monkeypatch)`: every payload a download button hands to Streamlit's media
  storage, as `Download(data, mimetype, filename)`, in the order they were made.
- `texts(elements)`: element texts with the pages' markdown escapes undone.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import pytest
from streamlit.components.v2.component_manager import BidiComponentManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from tests.scripted_server import Reply, ScriptedServer

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60


def whole_app() -> AppTest:
    """app.py as `streamlit run app.py` runs it. AppTest starts every run in Streamlit's legacy
    pages-folder mode, so the page file runs first and its shell.require_app() draws the shell:
    the same path as a deep link to a fresh server (see playground/ui/shell.py)."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    # Each AppTest's first run reads the metadata of every installed package, looking for
    # components (0.3-0.7 s here, for about a hundred AppTests in the suite); a server does it
    # once. Its finding is the same for all: they share one. AppTest has no public way to pass it.
    at._bidi_component_manager = _installed_components()
    return at


def app_test(page: str = "playground.py") -> AppTest:
    """whole_app(), switched to pages/<page>."""
    return whole_app().switch_page(f"pages/{page}")


@cache
def _installed_components() -> BidiComponentManager:
    manager = BidiComponentManager()
    manager.discover_and_register_components(start_file_watching=False)
    return manager


@contextmanager
def sandbox_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     models: Sequence[tuple[str, str | None]] = ()) -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        scripted.pose_as_sandbox(models=models)
        monkeypatch.setenv("PLAYGROUND_SANDBOX_PORT", str(scripted.port))
        monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("PLAYGROUND_PRESETS_DIR", str(tmp_path / "presets"))
        (tmp_path / "presets").mkdir(exist_ok=True)
        monkeypatch.delenv("SGP_API_KEY", raising=False)
        yield scripted


class Download(NamedTuple):
    data: bytes
    mimetype: str
    filename: str | None


def capture_downloads(monkeypatch: pytest.MonkeyPatch) -> list[Download]:
    served: list[Download] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, (bytes, str)):
            data = path_or_data.encode() if isinstance(path_or_data, str) else path_or_data
            served.append(Download(data, mimetype, filename))
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return served


def texts(elements) -> list[str]:
    """Element texts with markdown escapes (backslashes and the three HTML entities) undone."""
    return [re.sub(r"\\(.)", r"\1", str(e.value)).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            for e in elements]


def widget(listing, base: str):
    """The one widget of `listing` (e.g. at.text_area) drawn for `base`, whatever version of its
    key playground.ui.common.widget_sync gave it (a full key works too)."""
    found = [w for w in listing if w.key == base or (w.key or "").split("@")[0] == base]
    assert len(found) == 1, f"{len(found)} widgets for {base!r}: {[w.key for w in listing]}"
    return found[0]


def listing_endpoint(at: AppTest, server: ScriptedServer, answer: list[str]) -> None:
    """[endpoints.C] on `server`: it lists two models (c-first, c-second; OpenAI's shape) and
    streams `answer`. The scripted server has no models route on other paths: they list none."""
    server.route("/c/v1/models", Reply.json(200, {"object": "list", "data": [{"id": "c-first"}, {"id": "c-second"}]}))
    server.route("/c/v1/chat/completions", Reply.stream_text(answer))
    at.secrets["endpoints"]["C"] = {"base_url": server.base_url, "chat_path": "/c/v1/chat/completions",
                                    "models_path": "/c/v1/models", "auth": "bearer"}
    at.run()


def open_groups(at: AppTest, prefix: str = "") -> None:
    """Open every parameter group of the request editor under `prefix` (a folded group's widgets
    are not built). AppTest cannot click an expander open, so its state is set as the click would."""
    from playground.ui.common.request_editor import RequestEditor
    from playground.ui.common.request_fields import GROUPS

    for title in GROUPS:
        at.session_state[RequestEditor(prefix=prefix).group_key(title)] = True


def open_app() -> AppTest:
    """The whole app run once on the Playground, every parameter group open (a folded group's
    widgets are not built)."""
    at = whole_app()
    open_groups(at)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def send_stale(at: AppTest, *echoes) -> AppTest:
    """Run the app as a browser that has not drawn the latest page yet would: for each
    (old widget, value) it sends that value for a widget taken from an earlier run's tree (one
    code has since replaced), along with the current widgets' values (and any click)."""
    states = at._tree.get_widget_states()
    for old, value in echoes:
        old.set_value(value)
        states.widgets.append(old._widget_state)
    return at._run(states)


def widget_value(at: AppTest, base: str):
    """The session value of the widget drawn for `base` (see widget)."""
    versions = at.session_state["_widget_versions"] if "_widget_versions" in at.session_state else {}
    version = versions.get(base, 0)
    return at.session_state[f"{base}@{version}" if version else base]


def frame(at: AppTest, must_have: str):
    """The data of the one table on the page that has a column `must_have`."""
    for df in at.dataframe:
        if must_have in df.value.columns:
            return df.value
    columns = [list(d.value.columns) for d in at.dataframe]
    raise AssertionError(f"no table with a {must_have!r} column; tables: {columns}")
