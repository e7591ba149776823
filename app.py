"""Playground: a browser playground for chat-completion APIs (SGP and OpenAI-compatible).

`streamlit run app.py` (or `make run`). Streamlit runs this file twice over:

- as its server: `streamlit run` finds the `st.App` below and serves it. The App is Streamlit
  plus one route of ours, the live channel that streams an answer's text to the page
  (playground/ui/common/live_channel.py says why it goes beside Streamlit's own messages);
- as the script of every browser session (`__main__`): the shell (playground/ui/shell.py)
  sets the page config, navigates over the files in pages/ (each listed only when its file
  exists, so a page still being written never breaks the app) and draws the endpoint and
  model pickers in the sidebar; then the chosen page runs.
"""

from pathlib import Path

import streamlit as st

if __name__ == "__main__":
    from playground.ui import shell

    shell.start(Path(__file__).parent).run()
else:
    from playground.ui.common import live_channel

    app = st.App(__file__, routes=live_channel.routes())
