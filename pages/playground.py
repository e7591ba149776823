"""Playground: build any request (form or JSON), stream it, read its usage and logprobs."""

from playground.ui.playground.page import render
from playground.ui.shell import require_app

require_app()  # first: a deep link to a fresh server must still run app.py
render()
