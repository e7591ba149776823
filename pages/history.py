"""History: past runs, newest first; filter, search, open, rerun, compare, export, delete."""

from playground.ui.history.page import render
from playground.ui.shell import require_app

require_app()  # first: a deep link to a fresh server must still run app.py
render()
