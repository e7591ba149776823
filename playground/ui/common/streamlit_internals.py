"""Every use the app makes of Streamlit's internals, in one place. Each is here because no public
API does the job (Streamlit 1.67); each says why, the public API it waits for, and what fails
first should Streamlit change it. Nothing else in playground/, pages/ or app.py imports a module
of streamlit but `streamlit` itself (and its public `streamlit.components.v2`), reads a private
attribute of Streamlit's, or styles Streamlit's internal CSS classes (.stColumn, ...): our CSS and
JavaScript address the page through the `st-key-*` classes Streamlit documents for keyed
elements. tests/test_layout.py checks it. (The tests keep a few of their own: AppTest's private
component manager in tests/apptest_support.py, for speed; it says so there.)
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType

# The app's one stylesheet (issue 22, any window width: from 1,600 px down to 800 px nothing is cut
# or broken mid-word; tests/test_browser_widths.py measures labels and inputs at 800, 1,000 and
# 1,400 px and fails on the first change that breaks it). It addresses Streamlit's data-testid
# attributes, which Streamlit uses in its own tests but does not document as an API. Waits for:
# a sidebar width in st.set_page_config, column options for a minimum width (st.columns has
# none), and labels that wrap at word boundaries in Streamlit's own CSS.
LAYOUT_CSS = """<style>
/* Below 1,280 px the sidebar (300 px by default, kept when the window shrinks) and the wide
   layout's 5rem margins left the page half the window at 900 px. */
@media (max-width: 1280px) {
  [data-testid="stSidebar"] { width: 17.5rem !important; min-width: 17.5rem !important; }
  [data-testid="stSidebarContent"] { padding-left: 0.5rem; padding-right: 0.5rem; }
  [data-testid="stSidebarUserContent"] { padding-left: 0.75rem; padding-right: 0.75rem; }
  [data-testid="stMainBlockContainer"] { padding-left: 1.5rem; padding-right: 1.5rem; }
}
/* Columns stack below a width: a column holding a labelled field or a button with words,
   narrower than a labelled number box, wraps under the one before instead of squeezing it
   (Streamlit's rows already wrap; they lacked a floor). Columns of icon buttons keep their size. */
[data-testid="stColumn"]:has([data-testid="stWidgetLabel"], button p:not(:empty)) { min-width: min(100%, 10rem); }
/* A number box narrower than 12rem drops its -/+ buttons (the arrow keys still step), so its
   value keeps the room: Streamlit itself drops them only below 120 px. */
[data-testid="stNumberInput"] { container-type: inline-size; }
@container (max-width: 12rem) {
  [data-testid="stNumberInputStepDown"], [data-testid="stNumberInputStepUp"] { display: none; }
}
/* Labels wrap at word boundaries only: Streamlit's break-word cut "temperature" into
   "temp / eratu / re" in a narrow column. */
[data-testid="stWidgetLabel"] p, [data-testid="stExpander"] summary p, button[role="tab"] p {
  overflow-wrap: normal; word-break: normal;
}
</style>"""

# The type st.Page returns (st.navigation takes and returns it), for annotations. Streamlit's
# API reference names it StreamlitPage but exports it only from this module.
# Waits for: the type under `st` (or streamlit.navigation).
Page = StreamlitPage


def run_is_over() -> bool:
    """Whether this script run must end now, though it calls nothing of Streamlit's that would
    end it (a live view only waits: the page draws the text). No public API tells, so this reads
    the script run context and a private attribute; should Streamlit rename them, this says
    False and the browser tests of Stop generating and of an edit while it streams fail.
    Waits for: a public "should this run stop" (st.context or the fragment's own API).

    - The page started a new run (an edit while the answer streams): Streamlit then stops the
      old run's parallel fragments at their next Streamlit call, which a live view never makes
      (`parallel_coordinator.should_stop()`). A stale view would wait on, and it could be the
      one to claim the final redraw, whose rerun then goes nowhere.
    - A click waits: Streamlit ends a running script at once for a click that reruns the whole
      page, but a click in a fragment (the Playground's Run bar is one: its Run then reruns only
      the bar, so the request leaves at once) is queued until the run ends. A view that held the
      run open while it streams would keep `Stop generating` waiting for the whole answer
      (`script_requests._state`, private).
    - The run was told to stop (an edit while the Run bar's own run streams: Streamlit starts the
      page's run on a new thread and leaves this one a stop request): the same private state."""
    ctx = get_script_run_ctx()
    coordinator = getattr(ctx, "parallel_coordinator", None)
    if coordinator is not None and coordinator.should_stop():
        return True
    requests = getattr(ctx, "script_requests", None)
    return getattr(requests, "_state", ScriptRequestType.CONTINUE) != ScriptRequestType.CONTINUE


def legacy_pages_mode() -> bool:
    """Whether Streamlit runs a page file alone, without app.py (its legacy pages-folder mode:
    playground/ui/shell.py's require_app says when and why). Streamlit says so only in a class
    attribute of its pages manager. Waits for: nothing, once Streamlit drops the legacy mode
    when a script calls st.navigation (then require_app goes too). Should it change, the
    browser tests that open a deep link first (test_browser_shell.py) fail."""
    return bool(PagesManager.uses_pages_directory) and get_script_run_ctx() is not None


@contextmanager
def as_main_script() -> Iterator[Path]:
    """Run the block under the main script's page hash, as a run of app.py would, and yield the
    folder of the main script (app.py). Used in the legacy mode only: the shell is drawn under
    app.py's hash (st.navigation switches to it), so every widget keeps the id it has on the runs
    that go through app.py (a widget whose id changes loses what was typed in it). Waits for:
    the legacy mode's end (see legacy_pages_mode)."""
    ctx = get_script_run_ctx()
    with ctx.run_with_active_hash(ctx.pages_manager.main_script_hash):
        yield Path(ctx.main_script_path).resolve().parent
