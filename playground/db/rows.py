"""A Run's columns in the runs table, derived from the Run alone (the store's save and the
version 3 migration's backfill of older rows both use this one function)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from playground.client.run import Run
from playground.client.schema import message_text

PREVIEW_CHARS = 200


def run_columns(run: Run) -> dict[str, Any]:
    """Everything but the row's provenance (source, user) and feedback (score, comment, tags)."""
    usage = run.usage
    text = "\n".join(part for choice in run.choices for part in (choice.text, choice.refusal or "") if part)
    users = [message for message in run.request.messages if message.role == "user"]
    return {
        "id": run.id,
        "started_at": epoch(run.started_at),
        "endpoint": run.endpoint or "",
        "model": run.request.model,
        "preset": run.preset,
        "text": text,
        "prompt": "\n".join(message_text(message) for message in run.request.messages),
        "error_kind": run.error.kind if run.error else None,
        "partial": int(run.partial),
        "total_tokens": usage.total_tokens if usage is not None and usage.total_tokens else None,
        "total_s": run.total_s,
        "data": run.model_dump_json(),
        "cancelled": int(run.cancelled),
        "prompt_preview": message_text(users[-1])[:PREVIEW_CHARS] if users else "",
        "error_message": run.error.message if run.error else None,
        "error_status": run.error.status_code if run.error else None,
    }


def epoch(moment: datetime) -> float:
    return moment.timestamp()
