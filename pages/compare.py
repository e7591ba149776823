"""Compare: 2 to 4 runs side by side (text, usage, latency, logprob tables, token diff) and Repeat."""

from playground.ui.compare.page import render
from playground.ui.shell import require_app

require_app()  # first: a deep link to a fresh server must still run app.py
render()
