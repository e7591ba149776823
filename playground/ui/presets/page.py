"""The Presets page: browse and search, preview, diff, duplicate/rename/delete, export, import,
share links. pages/presets.py only calls render()."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from playground.client.schema import message_text
from playground.presets import Preset, PresetStore, SecretFoundError, ShareLinkError, to_share_token
from playground.presets.diff import message_rows, param_rows
from playground.presets.export import export_download
from playground.presets.store import DATABASE, EDITED, LIBRARY, slugify
from playground.textsafe import code_span, escape_markdown
from playground.ui.common import notices
from playground.ui.presets import state
from playground.ui.presets.diff_view import message_cell_html, word_diff_html

DEFAULT_BASE_URL = "http://localhost:8501"


def app_base_url() -> str:
    """The app's root URL: PLAYGROUND_BASE_URL, else the browser's URL (st.context.url), else localhost."""
    configured = os.environ.get("PLAYGROUND_BASE_URL")
    if configured:
        return configured.rstrip("/")
    url = getattr(st.context, "url", None)
    if url:
        parts = urlsplit(url)
        if parts.scheme and parts.netloc:
            base_path = (st.get_option("server.baseUrlPath") or "").strip("/")
            return f"{parts.scheme}://{parts.netloc}" + (f"/{base_path}" if base_path else "")
    return DEFAULT_BASE_URL


def share_url(token: str) -> str:
    return f"{app_base_url()}/?preset={token}"


def filter_presets(presets: list[Preset], search: str, tags: list[str]) -> list[Preset]:
    words = search.lower().split()
    out = []
    for preset in presets:
        hay = " ".join([preset.name, preset.description, *preset.tags]).lower()
        if all(w in hay for w in words) and all(t in preset.tags for t in tags):
            out.append(preset)
    return out


# --- drawing ----------------------------------------------------------------------------------


def preview(preset: Preset) -> None:
    st.subheader(escape_markdown(preset.name), anchor=False)
    if preset.description:
        st.markdown(escape_markdown(preset.description))
    meta = []
    if preset.tags:
        meta.append("Tags: " + ", ".join(code_span(t) for t in preset.tags))
    if preset.endpoint and (preset.endpoint.kind or preset.endpoint.model):
        meta.append(f"Made for: {escape_markdown(preset.endpoint.kind or 'any endpoint')}, "
                    f"model {escape_markdown(preset.endpoint.model or preset.request.model)}")
    if meta:
        st.caption(" · ".join(meta))
    for message in preset.request.messages:
        with st.container(border=True):
            st.markdown(f"**{message.role}**")
            st.markdown(escape_markdown(message_text(message)) or "_(no text)_")
    if preset.variables:
        st.dataframe(pd.DataFrame([{"variable": "{{" + v.name + "}}", "default": v.default,
                                    "description": v.description} for v in preset.variables]),
                     hide_index=True, width="stretch")
    params = {k: v for k, v in preset.request.to_wire().items() if k != "messages"}
    st.json(params, expanded=True)


def share_box(preset: Preset) -> None:
    try:
        url = share_url(to_share_token(preset))
    except (ShareLinkError, SecretFoundError) as exc:
        st.warning(escape_markdown(str(exc)))
        return
    st.code(url, language=None, wrap_lines=True)
    st.caption("Copy it with the icon at the right of the box. Opening it loads the preset into the Playground.")


ORIGIN_LABELS = {LIBRARY: "library", DATABASE: "team database", EDITED: "team database (edited library preset)"}


def actions(preset: Preset, store: PresetStore) -> None:
    name = preset.name
    if store.database is not None:
        origin = store.origin(name)
        st.caption(f"Stored in the {ORIGIN_LABELS[origin]}." + (
            " Export it to the folder to propose it for the library." if origin != LIBRARY else ""))
        if origin != LIBRARY:
            st.button("Export to folder", key="presets_export_folder", on_click=state.on_export_to_folder,
                      args=(name,), icon=":material/drive_folder_upload:",
                      help=f"Writes it as {slugify(name)}.json into {store.folder}, for a pull request.")
    cols = st.columns(4)
    cols[0].button("Open in Playground", key="presets_open", on_click=state.on_open, args=(name,), type="primary")
    download = export_download(preset, state.cases_file(name))
    cols[1].download_button("Export (download)", data=download.data, file_name=download.file_name,
                            mime=download.mime, on_click="ignore", key="presets_export",
                            help="The preset's file, and its cases file when it has one (both in a zip).")
    cols[2].button("Show share link", key="presets_share",
                   on_click=state.show_share_link, args=(name,))
    cols[3].button("Duplicate", key="presets_duplicate", on_click=state.on_duplicate, args=(name,))
    if state.sharing(name):
        share_box(preset)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.text_input("New name", key=state.RENAME_TO, placeholder=name)
    right.button("Rename", key="presets_rename", on_click=state.on_rename, args=(name,))
    if state.confirming(name):
        where = "It is removed from the team database" if store.database is not None else \
            "Its file is removed from the presets folder"
        st.warning(f"Delete {state.quoted(name)}? {where}.")
        yes, no = st.columns(2)
        yes.button("Yes, delete", key="presets_delete_yes", on_click=state.delete, args=(name,), type="primary")
        no.button("Cancel", key="presets_delete_no", on_click=state.ask_delete, args=(None,))
    else:
        st.button("Delete…", key="presets_delete",
                  on_click=state.ask_delete, args=(name,))


def browse(presets: list[Preset], store: PresetStore) -> None:
    all_tags = sorted({t for p in presets for t in p.tags})
    search_col, tag_col = st.columns(2)
    search = search_col.text_input("Search", key="presets_search", placeholder="name, description or tag")
    tags = tag_col.multiselect("Tags", all_tags, key="presets_tags")
    shown = filter_presets(presets, search, tags)
    if not shown:
        st.info("No preset matches." if presets else "No presets yet: save one from the Playground, or import files.")
        return
    origins = store.origins()  # one read: where each preset is stored (with a team database)
    rows = [{"name": p.name, "tags": ", ".join(p.tags), "model": p.request.model,
             "variables": ", ".join(v.name for v in p.variables), "description": p.description} for p in shown]
    if store.database is not None:
        for row, p in zip(rows, shown):
            row["stored in"] = ORIGIN_LABELS[origins.get(slugify(p.name), LIBRARY)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    names = [p.name for p in shown]
    state.select(names)
    selected = st.selectbox("Preset", names, key=state.SELECTED)
    preset = next(p for p in shown if p.name == selected)
    actions(preset, store)
    preview(preset)


def diff(presets: list[Preset]) -> None:
    if len(presets) < 2:
        st.info("Diff needs at least two presets.")
        return
    names = [p.name for p in presets]
    left, right = st.columns(2)
    name_a = left.selectbox("Left", names, index=0, key="presets_diff_a")
    name_b = right.selectbox("Right", names, index=1, key="presets_diff_b")
    a = next(p for p in presets if p.name == name_a)
    b = next(p for p in presets if p.name == name_b)
    rows = message_rows(a, b)
    changed = sum(r.changed for r in rows)
    st.markdown(f"**Messages** ({changed} of {len(rows)} differ)")
    for row in rows:
        html_a, html_b = word_diff_html(row.text_a, row.text_b if row.changed else row.text_a)
        ca, cb = st.columns(2)
        with ca:
            st.html(message_cell_html(row.role_a, html_a, row.changed))
        with cb:
            st.html(message_cell_html(row.role_b, html_b, row.changed))
    params = param_rows(a, b)
    st.markdown(f"**Parameters** ({sum(r.changed for r in params)} differ)")
    frame = pd.DataFrame([{"field": r.field, name_a + " (left)": r.a, name_b + " (right)": r.b,
                           "changed": "changed" if r.changed else ""} for r in params])
    styled = frame.style.apply(
        lambda row: ["background-color: #fff3cd" if row["changed"] else "" for _ in row], axis=1)
    st.dataframe(styled, hide_index=True, width="stretch")


def importer() -> None:
    st.file_uploader("Preset files (.json)", type=["json"], accept_multiple_files=True, key=state.UPLOAD,
                     help="Each file is checked: bad files are listed with the reason; the good ones are imported.")
    st.checkbox("Overwrite presets with the same name", key=state.OVERWRITE)
    st.button("Import", key="presets_import", on_click=state.on_import)


def render() -> None:
    store = PresetStore()
    st.title("Presets")
    if store.database is not None:
        st.caption(f"Presets saved here go to the team database ({escape_markdown(store.database.where)}), "
                   f"shown beside the reviewed library: the files in {escape_markdown(str(store.folder))}.")
    else:
        st.caption(f"The team library: the files in {escape_markdown(str(store.folder))}")
    notices.show(state.NOTICES)
    if state.take_open_request():
        st.switch_page("pages/playground.py")
    presets, problems = store.scan()
    for filename, reason in problems:
        st.warning(f"**{escape_markdown(filename)}** in the presets folder cannot be read: {escape_markdown(reason)}")
    tab_browse, tab_diff, tab_import = st.tabs(["Browse", "Diff", "Import"])
    with tab_browse:
        browse(presets, store)
    with tab_diff:
        diff(presets)
    with tab_import:
        importer()

