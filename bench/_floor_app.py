"""The floor for bench/ui_latency.py: the smallest Streamlit app that streams the same answer.

A text area, a Run button, and one placeholder redrawn at most every 50 ms while the answer
streams (the first text at once, then whenever 50 ms have passed, and the whole text at the
end), streamed with httpx in the script thread from $BENCH_CHAT_URL (an SGP-style
`/v4/beta/chat/completions`). The answer is drawn as the Playground draws it (st.html of a
`div.pg-answer`, escaped), so both apps are measured on the same element.

    BENCH_CHAT_URL=http://127.0.0.1:PORT/v4/beta/chat/completions streamlit run bench/_floor_app.py
"""

import html
import json
import os
import time

import httpx
import streamlit as st

URL = os.environ.get("BENCH_CHAT_URL", "http://127.0.0.1:8765/v4/beta/chat/completions")
REDRAW_S = 0.05
STYLE = "white-space: pre-wrap; word-break: break-word;"


def draw(box, text: str) -> None:
    box.html(f'<div class="pg-answer" style="{STYLE}">{html.escape(text)}</div>')


st.title("Floor")
prompt = st.text_area("Message", placeholder="Type a user message", key="prompt")
if st.button("Run", key="run", type="primary"):
    box = st.empty()
    text, drawn_at = "", 0.0
    body = {"model": "scripted/model", "messages": [{"role": "user", "content": prompt}], "stream": True}
    with httpx.stream("POST", URL, json=body, timeout=httpx.Timeout(30.0)) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices") or []:
                text += choice.get("delta", {}).get("content") or ""
            if text and time.monotonic() - drawn_at >= REDRAW_S:
                draw(box, text)
                drawn_at = time.monotonic()
    draw(box, text)
