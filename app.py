"""Playground: a browser playground for chat-completion APIs (SGP and OpenAI-compatible).

`streamlit run app.py` (or `make run`). The sidebar picks the endpoint and model; the pages
live in pages/ and are listed only when their file exists, so a page still being written
never breaks the app.
"""

from pathlib import Path

import streamlit as st

from playground.ui import sidebar

HERE = Path(__file__).parent
PAGES = [
    ("pages/playground.py", "Playground", ":material/chat:"),
    ("pages/compare.py", "Compare", ":material/compare_arrows:"),
    ("pages/presets.py", "Presets", ":material/bookmarks:"),
    ("pages/history.py", "History", ":material/history:"),
]

st.set_page_config(page_title="Playground", page_icon=":material/science:", layout="wide")

pages = [
    st.Page(str(HERE / path), title=title, icon=icon, default=(path == "pages/playground.py"))
    for path, title, icon in PAGES
    if (HERE / path).exists()
]
page = st.navigation(pages)
sidebar.render()
page.run()
