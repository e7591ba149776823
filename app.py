"""Playground: a browser playground for chat-completion APIs (SGP and OpenAI-compatible).

`streamlit run app.py` (or `make run`). The shell (playground/ui/shell.py) sets the page
config, navigates over the files in pages/ (each listed only when its file exists, so a page
still being written never breaks the app) and draws the endpoint and model pickers in the
sidebar; then the chosen page runs.
"""

from pathlib import Path

from playground.ui import shell

shell.start(Path(__file__).parent).run()
