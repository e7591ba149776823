"""Presets: the team library of prompt files (browse, diff, import/export, share links)."""

from playground.ui.presets_page import render

render()
