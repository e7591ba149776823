"""Presets: the file format (model), the folder store (store), share links (sharelink) and the
diff of two presets (diff). The names most callers need are re-exported here."""

from playground.presets.model import *  # noqa: F403
from playground.presets.model import __all__ as _model_names
from playground.presets.store import (
    ImportReport,
    PresetConflictError,
    PresetExistsError,
    PresetNameError,
    PresetNotFound,
    PresetStore,
    PresetStoreError,
    default_presets_dir,
    slugify,
)

__all__ = [*_model_names, "ImportReport", "PresetConflictError", "PresetExistsError", "PresetNameError",
           "PresetNotFound", "PresetStore", "PresetStoreError", "default_presets_dir", "slugify"]
