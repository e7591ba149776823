""""Get code": the exact request as curl, Python httpx and the openai SDK (key from an env var),
and "Request as sent": the body Run sends, read-only. Both show the working request with its
`{{variables}}` filled in (state.filled_request), since that is what runs."""

from __future__ import annotations

import json

import streamlit as st

from playground import codegen
from playground.client.endpoint import Endpoint
from playground.client.schema import ChatRequest
from playground.presets import MissingVariableError
from playground.textsafe import escape_markdown


def _missing(names: list[str]) -> str:
    return escape_markdown(str(MissingVariableError(names)))


def render(endpoint: Endpoint, request: ChatRequest | None, missing: list[str] | None = None) -> None:
    """`request`: what Run sends (None while the variables `missing` have no value)."""
    if request is None:
        st.info(f"{_missing(missing or [])} The snippets send the request with its variables filled in.",
                icon=":material/data_object:")
        return
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


AS_SENT = "Request as sent (variables filled in)"


def as_sent(request: ChatRequest | None, missing: list[str] | None = None) -> None:
    """Under the JSON editor, while the request has variables: exactly the body Run sends."""
    with st.expander(AS_SENT, expanded=True):
        if request is None:
            st.info(_missing(missing or []), icon=":material/data_object:")
        else:
            st.code(json.dumps(request.to_wire(), indent=2, ensure_ascii=False), language="json", wrap_lines=True)
