"""Turning a choice's tokens into text deltas: UTF-8 split across tokens, stop sequences.

Text that could be the start of a stop sequence is held back until it is clear it is not;
a stop sequence found ends the choice and is not sent (as OpenAI does). Each token's
logprob entry is sent with the delta that completes its text, so a client that joins the
tokens of the entries sees the text it was sent.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Delta:
    text: str = ""
    logprobs: list[Any] = field(default_factory=list)
    stopped: bool = False  # a stop sequence was found: the choice is over


class ChoiceText:
    def __init__(self, stop: list[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._stops = [s for s in stop if s]
        self.text = ""  # everything decoded so far (the stop sequence included, once found)
        self.sent = 0  # characters of text already handed out
        self.stopped = False
        self._pending: list[tuple[int, int, Any]] = []  # (start, end, logprob entry) not yet sent

    def add(self, piece: bytes, entry: Any = None) -> Delta:
        """One more token's bytes (and its logprob entry, if wanted)."""
        start = len(self.text)
        self.text += self._decoder.decode(piece)
        self._pending.append((start, len(self.text), entry))
        if not self._stops:
            return self._release(len(self.text))
        cut = self._find_stop()
        if cut is not None:
            return self._finish_at(cut)
        return self._release(len(self.text) - self._held_back())

    def finish(self) -> Delta:
        """The choice ended (end of text or length): hand out everything still held."""
        if self.stopped:
            return Delta()
        self.text += self._decoder.decode(b"", final=True)
        return self._release(len(self.text))

    @property
    def final_text(self) -> str:
        return self.text[: self.sent]

    def _find_stop(self) -> int | None:
        found = [i for i in (self.text.find(s, self.sent) for s in self._stops) if i >= 0]
        return min(found) if found else None

    def _held_back(self) -> int:
        """Length of the longest tail of the unsent text that begins some stop sequence."""
        unsent = len(self.text) - self.sent
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, unsent), best, -1):
                if self.text.endswith(stop[:size]):
                    best = size
                    break
        return best

    def _release(self, upto: int) -> Delta:
        delta = Delta(text=self.text[self.sent : upto])
        self.sent = upto
        while self._pending and self._pending[0][1] <= upto:
            entry = self._pending.pop(0)[2]
            if entry is not None:
                delta.logprobs.append(entry)
        return delta

    def _finish_at(self, cut: int) -> Delta:
        delta = Delta(text=self.text[self.sent : cut], stopped=True)
        self.sent = cut
        self.stopped = True
        for start, _end, entry in self._pending:
            if start < cut and entry is not None:
                delta.logprobs.append(entry)
        self._pending.clear()
        return delta
