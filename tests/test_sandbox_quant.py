"""The sandbox's weights: the shipped Q4_1 file by default, a Q8_0 copy made once on request
($PLAYGROUND_SANDBOX_QUANT, --quant), which holds the same values closely enough to answer the
same greedy tokens."""

from __future__ import annotations

import os

import pytest

from playground.sandbox import __main__ as cli
from playground.sandbox import quant

pytestmark = pytest.mark.sandbox
PROMPT = b"<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n"


def greedy(path: str, count: int) -> list[int]:
    from playground.sandbox.model import load_llama

    llm = load_llama(path, n_ctx=256, n_threads=1)  # as the sandbox loads it (AMX CPUs: see load_llama)
    tokens = llm.tokenize(PROMPT, special=True)
    return [token for token, _ in zip(llm.generate(tokens, temp=0.0), range(count))]


def test_the_default_is_the_shipped_file_and_the_environment_picks_another(monkeypatch, tmp_path):
    monkeypatch.delenv(quant.QUANT_ENV, raising=False)
    assert quant.default_quant() == "q4_1" and quant.model_file() == quant.bundled_model_path()
    monkeypatch.setenv(quant.QUANT_ENV, "Q8_0")
    assert quant.default_quant() == "q8_0"
    monkeypatch.setenv(quant.QUANT_ENV, "q3_nonsense")  # unknown: the default, never a crash at start
    assert quant.default_quant() == "q4_1"
    with pytest.raises(ValueError, match="unknown quantization 'q5_k': one of q4_1, q8_0"):
        quant.model_file("q5_k", cache=tmp_path)
    assert cli.parse_args(["--quant", "q8_0"]).quant == "q8_0"


def test_the_cli_offers_exactly_the_known_types(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--quant", "q2_k"])
    assert "choose from 'q4_1', 'q8_0'" in capsys.readouterr().err
    assert tuple(quant.QUANTS) == ("q4_1", "q8_0")


def test_a_q8_0_copy_is_made_once_and_answers_the_same_greedy_tokens(tmp_path):
    path = quant.model_file("q8_0", cache=tmp_path)
    made = os.stat(path)
    assert path == str(tmp_path / "SmolLM2-135M-Instruct.Q8_0.gguf")
    assert 1.4 < made.st_size / os.stat(quant.bundled_model_path()).st_size < 1.7  # 8 bits a weight, not 4
    assert quant.model_file("q8_0", cache=tmp_path) == path and os.stat(path).st_mtime_ns == made.st_mtime_ns
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(path)]  # no partial file left
    assert greedy(path, 16) == greedy(quant.bundled_model_path(), 16)
