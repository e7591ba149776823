"""What a preset's Export (download) gives: its JSON file, or, when the preset has a cases file
beside it (presets/NAME.cases.csv, which Experiments runs it over), a zip of both files named
as they are in the folder, so a teammate unpacks them into presets/ as they are."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from playground.presets.model import Preset, preset_to_json
from playground.presets.store import slugify


@dataclass(frozen=True)
class Download:
    file_name: str
    data: bytes
    mime: str


def export_download(preset: Preset, cases_csv: bytes | None = None) -> Download:
    stem = slugify(preset.name)
    text = preset_to_json(preset).encode()
    if cases_csv is None:
        return Download(f"{stem}.json", text, "application/json")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(f"{stem}.json", text)
        bundle.writestr(f"{stem}.cases.csv", cases_csv)
    return Download(f"{stem}.zip", buffer.getvalue(), "application/zip")
