"""`python bench/_peer_server.py ARGS`: llama-cpp-python's own server (`python -m llama_cpp.server
ARGS`), with the weights loaded the way the sandbox loads them.

On a CPU with Intel AMX llama.cpp repacks the weights for its AMX matmul, which crashed the process
(SIGSEGV in ggml_backend_amx_mul_mat) on every step of more than one token: the server died on its
first prompt. The sandbox turns those extra buffers off there (playground/sandbox/model.py,
_model_params); so does this, so the peer runs at all and takes the same CPU path as the sandbox.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.sandbox.model import _cpu_has_amx, _model_params  # noqa: E402

if __name__ == "__main__":
    with _model_params(use_extra_bufts=not _cpu_has_amx()):
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
