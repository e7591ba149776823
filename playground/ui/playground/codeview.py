""""Get code": the exact request as curl, Python httpx and the openai SDK (key from an env var)."""

from __future__ import annotations

import streamlit as st

from playground import codegen
from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest
from playground.textsafe import escape_markdown


def render(endpoint: Endpoint, request: ChatRequest) -> None:
    st.caption("The exact request below, ready to paste. "
               "The key is read from an environment variable, never written out.")
    tabs = st.tabs(["curl", "Python (httpx)", "Python (openai)"])
    makers = [(codegen.curl_snippet, "bash"), (codegen.httpx_snippet, "python"), (codegen.openai_snippet, "python")]
    for tab, (make, language) in zip(tabs, makers):
        with tab:
            try:
                st.code(make(endpoint, request), language=language)
            except Exception as error:  # a snippet must never take the page down
                st.warning(f"Could not build this snippet: {escape_markdown(str(error))}")  # may quote the request
