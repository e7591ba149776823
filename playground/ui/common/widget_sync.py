"""Setting a widget's value from code without the browser undoing it.

When a callback writes a widget's value (the JSON view after a form edit, the form after a
JSON edit), the browser learns it only when the redrawn page reaches it. A click made before
that (Tab out of a message box, then straight onto Run) sends the widget's *old* value with
the rerun; Streamlit sees a change and fires the widget's on_change with that stale value,
which would undo the edit just made.

So `write(key, value)` remembers the value it replaced, and an on_change callback first asks
`stale(key)`: a change back to exactly the replaced value, within a few seconds of the write,
is the browser echoing what it showed before; the written value is put back and the change
is ignored.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

ECHO_WINDOW_S = 5.0
_REPLACED = "_widget_sync_replaced"
_MISSING = object()


def _replaced() -> dict[str, tuple[Any, Any, float]]:
    return st.session_state.setdefault(_REPLACED, {})


def write(key: str, value: Any) -> None:
    old = st.session_state[key] if key in st.session_state else _MISSING
    replaced = _replaced()
    if old is not _MISSING and old != value:
        replaced[key] = (old, value, time.monotonic())
    else:
        replaced.pop(key, None)
    st.session_state[key] = value


def stale(key: str) -> bool:
    """In an on_change callback: True when the new value is the browser echoing the value
    that `write` replaced moments ago (the written value is restored)."""
    replaced = _replaced()
    entry = replaced.get(key)
    if entry is None:
        return False
    old, new, at = entry
    if time.monotonic() - at > ECHO_WINDOW_S:
        replaced.pop(key, None)
        return False
    if st.session_state.get(key) == old:
        st.session_state[key] = new
        return True
    return False
