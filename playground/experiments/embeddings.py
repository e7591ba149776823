"""Embeddings for `similar` checks that name an embedding `model`: the endpoint's OpenAI-style
embeddings route (its chat path with `chat/completions` replaced by `embeddings`, so
/v1/chat/completions -> /v1/embeddings), and the cosine similarity of two vectors.

An endpoint that does not serve embeddings (404, an error, no vectors) gives None and why; the
check then falls back to difflib's ratio and says so in its reason.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import httpx

from playground.client.endpoint import Endpoint

# (embedding model, texts) -> (vectors, "") or (None, why not)
Embed = Callable[[str, Sequence[str]], tuple[list[list[float]] | None, str]]


def embeddings_url(endpoint: Endpoint) -> str:
    path = endpoint.chat_path
    path = path[: -len("chat/completions")] + "embeddings" if path.endswith("chat/completions") else "/v1/embeddings"
    return endpoint.base_url.rstrip("/") + path


def embed(endpoint: Endpoint, model: str, texts: Sequence[str]) -> tuple[list[list[float]] | None, str]:
    try:
        with httpx.Client(timeout=endpoint.timeout, headers=endpoint.all_headers()) as client:
            response = client.post(embeddings_url(endpoint), json={"model": model, "input": list(texts)})
    except httpx.HTTPError as error:
        return None, f"embeddings unavailable ({type(error).__name__})"
    if response.status_code != 200:
        return None, f"embeddings not served (HTTP {response.status_code})"
    try:
        data = sorted(response.json()["data"], key=lambda item: item.get("index", 0))
        vectors = [[float(x) for x in item["embedding"]] for item in data]
    except (ValueError, KeyError, TypeError):
        return None, "embeddings not served (an answer without vectors)"
    if len(vectors) != len(texts):
        return None, f"embeddings: {len(vectors)} vectors for {len(texts)} texts"
    return vectors, ""


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
