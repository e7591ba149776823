"""What the Presets page remembers, and the only writer of it: the preset selected, a delete
waiting for its confirmation, the preset whose share link is shown, notes for the next run.
Widgets use the keys named here; callbacks are the functions below."""

from __future__ import annotations

import streamlit as st

from playground.experiments.cases import cases_path
from playground.presets import PresetStore
from playground.presets.store import PresetStoreError
from playground.textsafe import code_span, escape_markdown
from playground.ui.common import notices
from playground.ui.common.user import current_user
from playground.ui.playground import state as playground_state

NOTICES = "presets"  # the page's queue of notices (playground.ui.common.notices)
SELECTED = "presets_selected"
CONFIRM = "presets_confirm_delete"
SHARE_FOR = "presets_share_for"
RENAME_TO = "presets_rename_to"
OPEN_REQUESTED = "presets_open_requested"
UPLOAD = "presets_upload"
OVERWRITE = "presets_import_overwrite"


def _store() -> PresetStore:
    """The app's presets (the team database when one is configured), saving as the signed-in user."""
    return PresetStore(user=current_user())


def cases_file(name: str) -> bytes | None:
    """The preset's cases file from the presets folder (NAME.cases.csv), if it has one."""
    try:
        path = cases_path(_store().path_for(name))
        return path.read_bytes() if path.is_file() else None
    except (OSError, ValueError):  # a name that leaves the folder, an unreadable file: the JSON alone
        return None


def note(level: str, text: str) -> None:
    """Show `text` (markdown, escaped by the caller) once, at the top of the next page run."""
    notices.say(NOTICES, level, text, markdown=True)


def quoted(name: str) -> str:
    """A preset name quoted for markdown."""
    return "“" + escape_markdown(name) + "”"


def select(names: list[str]) -> None:
    """Keep the selection among `names` (the selected preset may have been renamed or deleted)."""
    if st.session_state.get(SELECTED) not in names:
        st.session_state[SELECTED] = names[0]


def ask_delete(name: str | None) -> None:
    """Ask for a confirmation before deleting `name` (None: the question is withdrawn)."""
    st.session_state[CONFIRM] = name


def confirming(name: str) -> bool:
    return st.session_state.get(CONFIRM) == name


def show_share_link(name: str) -> None:
    st.session_state[SHARE_FOR] = name


def sharing(name: str) -> bool:
    return st.session_state.get(SHARE_FOR) == name


def take_open_request() -> bool:
    """True once after "Open in Playground" loaded a preset: the page then switches to the Playground."""
    return st.session_state.pop(OPEN_REQUESTED, False)


def on_duplicate(name: str) -> None:
    try:
        copy = _store().duplicate(name)
    except (PresetStoreError, ValueError) as exc:
        return note("error", escape_markdown(str(exc)))
    st.session_state[SELECTED] = copy.name
    note("success", f"Duplicated as {quoted(copy.name)}.")


def on_rename(name: str) -> None:
    new = st.session_state.get(RENAME_TO, "").strip()
    if not new:
        return note("error", "Type the new name first.")
    try:
        renamed = _store().rename(name, new)
    except (PresetStoreError, ValueError) as exc:
        return note("error", escape_markdown(str(exc)))
    st.session_state[SELECTED] = renamed.name
    st.session_state[RENAME_TO] = ""
    note("success", f"Renamed {quoted(name)} to {quoted(renamed.name)}.")


def delete(name: str) -> None:
    st.session_state.pop(CONFIRM, None)
    try:
        _store().delete(name)
    except (PresetStoreError, ValueError) as exc:
        return note("error", escape_markdown(str(exc)))
    st.session_state.pop(SELECTED, None)
    note("success", f"Deleted {quoted(name)}.")


def on_export_to_folder(name: str) -> None:
    try:
        path = _store().export_to_folder(name)
    except (PresetStoreError, OSError, ValueError) as exc:
        return note("error", escape_markdown(str(exc)))
    note("success", f"Wrote {quoted(name)} to {code_span(str(path))}: propose it in a pull request to make it part "
                    "of the reviewed library.")


def on_open(name: str) -> None:
    error = playground_state.open_preset(name, "from the Presets page")
    if error:
        return note("error", error)
    st.session_state[OPEN_REQUESTED] = True


def on_import() -> None:
    files = st.session_state.get(UPLOAD) or []
    if not files:
        return note("error", "Choose one or more preset files first.")
    report = _store().import_files([(f.name, f.getvalue()) for f in files],
                                             overwrite=bool(st.session_state.get(OVERWRITE)))
    if report.imported:
        note("success", "Imported " + ", ".join(quoted(n) for n in report.imported) + ".")
    for filename, reason in report.errors:
        note("error", f"**{escape_markdown(filename)}** was not imported: {escape_markdown(reason)}")
