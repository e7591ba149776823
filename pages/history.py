"""History: past runs, newest first; filter, search, open, rerun, compare, export, delete."""

from playground.ui.history_widgets import history_page

history_page()
