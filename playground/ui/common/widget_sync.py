"""Setting a widget's value from code without the browser undoing it: versioned widget keys.

When code replaces a widget's value (the JSON view after a form edit, the form after a JSON
edit, a preset, a past run), the browser learns it only when the redrawn page reaches it. A
click made before that (Tab out of a message box, then straight onto Run) sends the widget's
*old* value with the rerun, and Streamlit would take it as the user's change and undo the edit.

So a widget whose value code may set is drawn with `key(base)`, and `write(base, value)` moves
it to a fresh key (`base@1`, `base@2`, ...) holding the new value. The browser's stale value
belongs to a key no widget has any more: Streamlit drops it, and no callback fires for it.
Callbacks and readers use `value(base)`, never the versioned key. A write of the value already
shown, or to a widget not drawn yet, keeps the key (no remount, focus stays).

This is the one place that knows the scheme; tests find a widget by its base key with
tests.apptest_support.widget.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

_VERSIONS = "_widget_versions"  # base key -> version; a plain key, so it survives page switches
SEPARATOR = "@"
_MISSING = object()


def _versions() -> dict[str, int]:
    return st.session_state.setdefault(_VERSIONS, {})


def key(base: str) -> str:
    """The key to draw the widget `base` with now."""
    version = _versions().get(base, 0)
    return f"{base}{SEPARATOR}{version}" if version else base


def value(base: str, default: Any = None) -> Any:
    return st.session_state.get(key(base), default)


def has(base: str) -> bool:
    """True when the widget's value is in the session (drawn, or written and not drawn yet)."""
    return key(base) in st.session_state


def write(base: str, new: Any) -> None:
    """Give widget `base` the value `new`, from code (a callback, or before the widget is drawn)."""
    current = st.session_state.get(key(base), _MISSING)
    if current is _MISSING:
        st.session_state[key(base)] = new
        return
    if current == new:
        return
    _versions()[base] = _versions().get(base, 0) + 1
    st.session_state[key(base)] = new


def renew(base: str) -> None:
    """Draw widget `base` afresh under a new key, its old value dropped: for a widget whose
    value code cannot write (a data editor's value is its edits, not its data)."""
    st.session_state.pop(key(base), None)
    _versions()[base] = _versions().get(base, 0) + 1


def keep_valid(base: str, options: list, default: Any) -> None:
    """Before drawing a picker whose options change under it (panes, runs, presets): a value no
    longer among them becomes `default`."""
    if value(base, _MISSING) not in options:
        write(base, default)


class Values:
    """The widgets' values by base key, for callbacks that read several (`values["p_x"]`)."""

    def __getitem__(self, base: str) -> Any:
        return value(base)

    def get(self, base: str, default: Any = None) -> Any:
        return value(base, default)
