"""difflib, fast on long token sequences.

`FastSequenceMatcher` is `difflib.SequenceMatcher` for isjunk=None, autojunk=False: the same
matching blocks and opcodes (checked against difflib in tests/test_logprobs.py), found faster.
autojunk stays off on purpose: with it difflib treats tokens that fill more than 1% of a long
answer (" the", ",") as junk and misaligns long answers.

`opcodes(a, b)` first matches the common prefix and suffix (as GNU diff does: two samples of
one prompt share a start, and it must stay aligned), then runs the matcher on the middle.
`byte_opcodes(x, y)` aligns two byte strings (for runs with different tokenizers).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from difflib import Match, SequenceMatcher
from typing import Sequence

Opcode = tuple[str, int, int, int, int]


class FastSequenceMatcher(SequenceMatcher):
    """difflib.SequenceMatcher (isjunk=None, autojunk=False) with identical results, fast on
    long inputs. difflib's find_longest_match visits every pair of equal tokens in the range
    (for 4,000 tokens of text that is ~500k pairs, ~80 ms). Here:

    1. a match of 2 or more tokens is a run of equal *bigrams*; bigram pairs are rare, so the
       same dynamic programme over bigrams (same visiting order, so the same tie-break: the
       earliest start in a, then in b) finds it cheaply;
    2. with no equal bigram, the longest match is one token: the first i in a (then the
       first j in b) whose token occurs in b[blo:bhi], found by bisection.
    """

    _built = False

    def set_seq1(self, a) -> None:
        self._built = False
        super().set_seq1(a)

    def set_seq2(self, b) -> None:
        self._built = False
        super().set_seq2(b)

    def _bigrams(self) -> tuple[list[int], list[list[int]]]:
        """For each i in a, the id of the bigram a[i:i+2] (-1 when b lacks it), and per id the
        sorted positions j of that bigram in b. Built once per pair of sequences."""
        if not self._built:
            ids: dict[tuple, int] = {}
            positions: list[list[int]] = []
            b = self.b
            for j, pair in enumerate(zip(b, b[1:])):
                k = ids.get(pair)
                if k is None:
                    k = ids[pair] = len(positions)
                    positions.append([])
                positions[k].append(j)
            get = ids.get
            a = self.a
            self._a_ids = [get(pair, -1) for pair in zip(a, a[1:])]
            self._positions = positions
            self._built = True
        return self._a_ids, self._positions

    def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):
        a, b = self.a, self.b
        ahi = len(a) if ahi is None else ahi
        bhi = len(b) if bhi is None else bhi
        a_ids, positions = self._bigrams()
        besti, bestj, bestsize = alo, blo, 0
        j2len: dict[int, int] = {}
        last_j = bhi - 2  # a bigram at j needs j + 1 < bhi
        for i in range(alo, ahi - 1):
            k = a_ids[i]
            if k < 0:
                if j2len:
                    j2len = {}
                continue
            where = positions[k]
            if where[0] > last_j or where[-1] < blo:
                if j2len:
                    j2len = {}
                continue
            if len(where) == 1:  # the common case in similar texts: one candidate
                j = where[0]
                size = j2len.get(j - 1, 0) + 1
                j2len = {j: size}
                if size > bestsize:
                    besti, bestj, bestsize = i - size + 1, j - size + 1, size
                continue
            lo = bisect_left(where, blo) if where[0] < blo else 0
            hi = bisect_right(where, last_j, lo) if where[-1] > last_j else len(where)
            j2lenget = j2len.get
            newj2len = {}
            for j in where[lo:hi]:
                size = newj2len[j] = j2lenget(j - 1, 0) + 1
                if size > bestsize:
                    besti, bestj, bestsize = i - size + 1, j - size + 1, size
            j2len = newj2len
        if bestsize:
            return Match(besti, bestj, bestsize + 1)
        b2j = self.b2j
        nothing: list[int] = []
        for i in range(alo, ahi):
            where = b2j.get(a[i], nothing)
            if where and where[-1] >= blo:
                k = bisect_left(where, blo) if where[0] < blo else 0
                if where[k] < bhi:
                    return Match(i, where[k], 1)
        return Match(alo, blo, 0)


def opcodes(a: Sequence, b: Sequence) -> list[Opcode]:
    """Opcodes as difflib's get_opcodes gives them (adjacent equal blocks merged), with the
    common prefix and suffix matched first."""
    n, m = len(a), len(b)
    start = 0
    while start < n and start < m and a[start] == b[start]:
        start += 1
    end = 0
    while end < n - start and end < m - start and a[n - 1 - end] == b[m - 1 - end]:
        end += 1
    codes: list[Opcode] = []
    if start:
        codes.append(("equal", 0, start, 0, start))
    mid_a, mid_b = a[start:n - end], b[start:m - end]
    if mid_a or mid_b:
        matcher = FastSequenceMatcher(None, mid_a, mid_b, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            codes.append((tag, i1 + start, i2 + start, j1 + start, j2 + start))
    if end:
        codes.append(("equal", n - end, n, m - end, m))
    return merge_equal(codes)


def merge_equal(codes: list[Opcode]) -> list[Opcode]:
    merged: list[Opcode] = []
    for code in codes:
        if merged and code[0] == "equal" == merged[-1][0] and merged[-1][2] == code[1] and merged[-1][4] == code[3]:
            last = merged.pop()
            code = ("equal", last[1], code[2], last[3], code[4])
        merged.append(code)
    return merged


def starts(pieces: Sequence[bytes | str]) -> list[int]:
    """The offset at which each piece begins when the pieces are joined."""
    out, offset = [], 0
    for piece in pieces:
        out.append(offset)
        offset += len(piece)
    return out


WORD = re.compile(rb"\s*\S+|\s+")
FINE_LIMIT = 4096  # bytes per side below which a differing span is diffed byte by byte


def byte_opcodes(x: bytes, y: bytes) -> list[Opcode]:
    """Byte-level opcodes in two steps: difflib over words (a large alphabet, so fast), then
    over the bytes of each differing span. Plain difflib over 16 kB of bytes is quadratic."""
    words_x, words_y = WORD.findall(x), WORD.findall(y)
    offs_x, offs_y = starts(words_x) + [len(x)], starts(words_y) + [len(y)]
    codes: list[Opcode] = []
    for tag, i1, i2, j1, j2 in opcodes(words_x, words_y):
        b1, b2, c1, c2 = offs_x[i1], offs_x[i2], offs_y[j1], offs_y[j2]
        if tag == "equal" or not (b2 > b1 and c2 > c1) or max(b2 - b1, c2 - c1) > FINE_LIMIT:
            codes.append((tag, b1, b2, c1, c2))
            continue
        for sub in opcodes(x[b1:b2], y[c1:c2]):
            codes.append((sub[0], sub[1] + b1, sub[2] + b1, sub[3] + c1, sub[4] + c1))
    return merge_equal(codes)


