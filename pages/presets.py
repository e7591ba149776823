"""Presets: the team library of prompt files (browse, diff, import/export, share links)."""

from playground.ui.presets.page import render
from playground.ui.shell import require_app

require_app()  # first: a deep link to a fresh server must still run app.py
render()
