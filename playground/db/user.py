"""Who did something, when the app knows (Streamlit's login): stored beside runs, experiment
runs and presets. None everywhere when no login is configured."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    name: str | None = None
    email: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.email or ""
