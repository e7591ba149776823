"""The app shell: page config, `st.navigation` over the files in pages/, and the endpoint
and model pickers in the sidebar. app.py runs `start(...)` and then the page it returns.

Every page file calls `require_app()` first. Streamlit (1.67) sets the class attribute
`PagesManager.uses_pages_directory` (read in common/streamlit_internals.py, with the other
internals) on a server's first session when a pages/ folder sits beside app.py, and only
`st.navigation` turns it off. While it is on, the script runner
ignores app.py and runs its legacy pages-folder navigation (`_mpa_v1`), which executes the
page file alone: no sidebar pickers, no page config. That is what happens when a fresh
server's first request is a deep link (/history, /compare, ...), and it lasts for every
later session until someone opens /. (AppTest resets the attribute before every run, so
there every run of app.py starts that way.)

`require_app()` notices the legacy mode and sets the shell up right there: `st.navigation`
ends the legacy mode and resolves the same page (page hashes come from the URL path, the
same in both modes), the sidebar is drawn, and the page file simply carries on. No rerun,
so nothing the user just clicked is lost.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from playground import settings
from playground.ui import sidebar
from playground.ui.common import streamlit_internals
from playground.ui.playground import state as playground_state

PAGES = [  # (file in pages/, title, icon); a page is listed only when its file exists
    ("playground.py", "Playground", ":material/chat:"),
    ("compare.py", "Compare", ":material/compare_arrows:"),
    ("experiments.py", "Experiments", ":material/science:"),
    ("presets.py", "Presets", ":material/bookmarks:"),
    ("history.py", "History", ":material/history:"),
]
DEFAULT_PAGE = "playground.py"
# A file, not ":material/...": Streamlit draws a material-icon favicon from Google's font host,
# and the app must make no outside request (offline, or behind a strict proxy).
ICON = Path(__file__).with_name("icon.svg")


def start(root: Path) -> streamlit_internals.Page:
    """Page config, navigation over root/pages, the sidebar. Returns the page to run."""
    settings.configure_logging()
    st.set_page_config(page_title="Playground", page_icon=str(ICON), layout="wide")
    st.html(streamlit_internals.LAYOUT_CSS)  # issue 22, any window width; a <style> alone takes no room
    pages = [
        st.Page(str(root / "pages" / name), title=title, icon=icon, default=name == DEFAULT_PAGE)
        for name, title, icon in PAGES
        if (root / "pages" / name).exists()
    ]
    page = st.navigation(pages)
    playground_state.prepare()  # before the sidebar: it shows the working request's model (one owner)
    sidebar.render()
    return page


def require_app() -> None:
    """Set the shell up when Streamlit runs this page file without app.py (legacy mode)."""
    if not streamlit_internals.legacy_pages_mode():
        return
    # As in app.py: the shell under app.py's script hash (st.navigation switches to it), then
    # the rest of this page under the page's own, so every widget keeps the id it has on the
    # runs that go through app.py (a widget whose id changes loses what was typed in it).
    # Legacy mode means a pages/ folder beside the main script: that script is app.py.
    with streamlit_internals.as_main_script() as root:
        start(root)
