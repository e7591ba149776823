"""Experiments: one preset over a table of cases and 1 to 4 variants, every answer graded by its checks."""

from playground.ui.experiments.page import render
from playground.ui.shell import require_app

require_app()  # first: a deep link to a fresh server must still run app.py
render()
