"""Tables and numbers from token logprobs: per-token table, perplexity, entropy, and a
token-aligned diff of two answers (per byte when the two runs used different tokenizers).

Conventions:
- A logprob at or below -9999 (or -inf / NaN) means "outside the top 20": its probability is
  0, its logprob shows as NaN, and perplexity leaves it out (it is unknown, not -9999).
- Entropy is in bits, over the top-k alternatives renormalised to sum to 1, with the sampled
  token added when the server left it out of top_logprobs (some servers include it, some do
  not; both give the same number).
- Tables are built from column lists in one pass (numpy for the arithmetic), never row by row.
- The token objects are read once per token list and remembered (`_read`): a token list that
  grows or is edited is read again, but token objects are taken as never edited in place.
"""

from __future__ import annotations

import codecs
import math
import threading
import weakref
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from operator import call, is_
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from playground.analysis._fastdiff import byte_opcodes, opcodes, starts
from playground.client.schema import TokenLogprob, TopLogprob

SENTINEL = -9999.0
TOKEN_COLUMNS = ["position", "token", "probability", "logprob", "entropy", "alternatives"]
DIFF_COLUMNS = ["op", "pos_a", "pos_b", "token_a", "token_b", "logprob_a", "logprob_b", "delta", "topk_overlap"]
_LN2 = math.log(2.0)


def known(logprob: float) -> bool:
    """False for the 'outside the top 20' sentinel, -inf and NaN."""
    return logprob > SENTINEL and logprob != math.inf  # NaN compares False


def visible_token(token: str) -> str:
    """A token with its whitespace made visible, for one-line displays."""
    return token.replace(" ", "\u2423").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


# --- tokens read as text -------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """Tokens [start, end) whose bytes together are whole UTF-8 characters: one token, or the
    tokens one character was split across (a Japanese character is often two or three byte
    tokens, each meaningless alone)."""

    start: int
    end: int
    text: str


def pieces(tokens: Sequence[TokenLogprob]) -> list[Piece]:
    """The answer cut where its text can be read: a token whose bytes end inside a character is
    joined with the tokens that finish it. Bytes that never make a character show as U+FFFD."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    out: list[Piece] = []
    start, parts = 0, []
    for index, token in enumerate(tokens):
        parts.append(decoder.decode(token_bytes(token)))
        # a character has at most 4 bytes: never hold more than 4 tokens back for one
        if decoder.getstate()[0] and index - start < 3:
            continue
        parts.append(decoder.decode(b"", final=True))
        decoder.reset()
        out.append(Piece(start, index + 1, "".join(parts)))
        start, parts = index + 1, []
    if start < len(tokens):  # the answer ended inside a character
        out.append(Piece(start, len(tokens), "".join(parts) + decoder.decode(b"", final=True)))
    return out


def token_text(token: TokenLogprob | TopLogprob) -> str:
    """One token read alone: its bytes as UTF-8 when they are whole characters, else with the
    bytes of a split character as \\xNN (what an alternative that starts a character is)."""
    return token_bytes(token).decode("utf-8", errors="backslashreplace")


def shown_tokens(tokens: Sequence[TokenLogprob]) -> list[str]:
    """Each token's text for a table row: a token that is part of a split character shows that
    character and which part it is ("雛‹1/2›": no space added, so visible_token leaves it)."""
    shown: list[str] = []
    for piece in pieces(tokens):
        size = piece.end - piece.start
        if size == 1:
            shown.append(token_text(tokens[piece.start]))
        else:
            shown += [f"{piece.text}\u2039{k}/{size}\u203a" for k in range(1, size + 1)]
    return shown


def bytes_hex(token: TokenLogprob | TopLogprob) -> str:
    """The token's bytes as hex pairs: 'e9 9b'."""
    return token_bytes(token).hex(" ")


def sampled_logprob(token: TokenLogprob) -> float | None:
    """The token's logprob after the server's sampler chain (temperature, top_k, top_p, min_p),
    when the server reports it (the sandbox's `sampled_logprob`); None otherwise."""
    value = getattr(token, "sampled_logprob", None)
    if value is None and token.model_extra:
        value = token.model_extra.get("sampled_logprob")
    return float(value) if isinstance(value, (int, float)) else None


def tail_reason(token: TokenLogprob, top_p: float | None = None) -> str | None:
    """Why the chosen token came from the tail of the model's distribution, or None: it was not
    the greedy pick, and the alternatives more likely than it already hold at least top_p of the
    probability (the request's top_p; 0.9 when it set none), so nucleus sampling would not have
    kept it either."""
    if not known(token.logprob) or not token.top_logprobs:
        return None
    above = [alt for alt in token.top_logprobs if known(alt.logprob) and alt.logprob > token.logprob
             and alt.token != token.token]
    if not above:
        return None
    nucleus = top_p if top_p is not None and 0 < top_p < 1 else 0.9
    mass = math.fsum(math.exp(min(alt.logprob, 0.0)) for alt in above)
    if mass < nucleus:
        return None
    best = max(above, key=lambda alt: alt.logprob)
    return (f"greedy decoding would have taken {token_text(best)!r}, and the {len(above)} more likely tokens "
            f"hold {mass:.0%}, more than top_p {nucleus:g} keeps")


# --- one answer -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    """One answer's token objects read into plain columns. Reading the attributes of 80,000
    small pydantic objects (4,000 tokens x 20 alternatives, scattered in memory) is the main
    cost of a table, so `_read` visits each object once, for both fields, and everything else
    works on these lists and arrays."""

    texts: list[str]
    logprobs: np.ndarray  # the sampled tokens' logprobs as sent (sentinels kept)
    names: list[str]  # every alternative's token, all rows end to end, as sent
    alt_logprobs: np.ndarray  # their logprobs as sent
    counts: np.ndarray  # alternatives per row (int64)

    @property
    def ends(self) -> np.ndarray:
        """Where each row's alternatives end in `names`."""
        return np.cumsum(self.counts)


_READ_CACHE: dict[int, tuple[list[weakref.ref], _Columns]] = {}  # id(token list) -> (its tokens, columns)
_READ_CACHE_SIZE = 8
_READ_LOCK = threading.Lock()


def _read(tokens: Sequence[TokenLogprob]) -> _Columns:
    """`_read_columns(tokens)`, remembered for the last few token lists: the Compare page
    builds each answer's table and then their diff, and reading the objects is most of the
    cost of each. A hit needs the same list holding the same token objects (a list that grew
    while streaming, or was edited, is read again); the token objects are taken as never
    edited in place (they record a server's answer). Weak references: the cache keeps no
    answer alive."""
    cols = _cached(tokens)
    if cols is None:
        cols = _read_columns(tokens)
        _remember(tokens, cols)
    return cols


def _cached(tokens: Sequence[TokenLogprob]) -> _Columns | None:
    with _READ_LOCK:
        hit = _READ_CACHE.get(id(tokens))
    return hit[1] if hit is not None and _holds(tokens, hit[0]) else None


def _remember(tokens: Sequence[TokenLogprob], cols: _Columns) -> None:
    try:
        refs = list(map(weakref.ref, tokens))
    except TypeError:  # objects without weak references are not cached
        return
    with _READ_LOCK:
        _READ_CACHE.pop(id(tokens), None)
        _READ_CACHE[id(tokens)] = (refs, cols)
        while len(_READ_CACHE) > _READ_CACHE_SIZE:
            del _READ_CACHE[next(iter(_READ_CACHE))]  # the oldest


def _holds(tokens: Sequence[TokenLogprob], refs: list[weakref.ref]) -> bool:
    """Does `tokens` hold exactly the (live) objects that `refs` point at, in order?"""
    return len(refs) == len(tokens) and all(map(is_, map(call, refs), tokens))


def _read_columns(tokens: Sequence[TokenLogprob]) -> _Columns:
    texts: list[str] = []
    logprobs: list[float] = []
    names: list[str] = []
    alt_logprobs: list[float] = []
    counts: list[int] = []
    # One plain loop: faster here than attrgetter maps or per-row comprehensions (measured).
    for tok in tokens:
        texts.append(tok.token)
        logprobs.append(tok.logprob)
        alts = tok.top_logprobs
        for alt in alts:
            names.append(alt.token)
            alt_logprobs.append(alt.logprob)
        counts.append(len(alts))
    return _Columns(texts, _frozen(np.fromiter(logprobs, dtype=float, count=len(logprobs))), names,
                    _frozen(np.fromiter(alt_logprobs, dtype=float, count=len(alt_logprobs))),
                    _frozen(np.array(counts, dtype=np.int64)))


def _frozen(array: np.ndarray) -> np.ndarray:
    """Read-only: cached columns are shared by every caller."""
    array.flags.writeable = False
    return array


def token_table(tokens: Sequence[TokenLogprob]) -> pd.DataFrame:
    """One row per token: position, token, probability, logprob, entropy (bits), alternatives
    (a readable string such as 'Paris 91.2% | London 3.1%', in the server's order)."""
    cols = _read(tokens)
    n = len(cols.texts)
    names, alt_lps, counts = _shown_alternatives(cols)
    lp_array = cols.logprobs
    with np.errstate(invalid="ignore", over="ignore"):
        known_mask = lp_array > SENTINEL
        logprob = np.where(known_mask, lp_array, np.nan)
        probability = np.where(known_mask, np.exp(np.minimum(lp_array, 0.0)), 0.0)
    return pd.DataFrame(
        {
            "position": np.arange(n, dtype=np.int64),
            "token": pd.Series(cols.texts, dtype=object),
            "probability": probability,
            "logprob": logprob,
            "entropy": _segment_entropy(*_with_sampled(cols, names, alt_lps, counts)),
            "alternatives": pd.Series(_alternative_strings(names, alt_lps, counts), dtype=object),
        },
        columns=TOKEN_COLUMNS,
    )


def _shown_alternatives(cols: _Columns) -> tuple[list[str], np.ndarray, np.ndarray]:
    """names, logprobs, counts of the alternatives the table shows: a row whose smallest
    logprob (as `min` finds it) is unknown loses its unknown alternatives."""
    if not len(cols.alt_logprobs) or cols.alt_logprobs.min() > SENTINEL:  # the usual case: all known
        return cols.names, cols.alt_logprobs, cols.counts
    names: list[str] = []
    kept: list[float] = []
    counts: list[int] = []
    all_lps, start = cols.alt_logprobs.tolist(), 0
    for end in cols.ends.tolist():
        row_names, lps = cols.names[start:end], all_lps[start:end]
        if lps and not min(lps) > SENTINEL:
            keep = [k for k, v in enumerate(lps) if known(v)]
            lps, row_names = [lps[k] for k in keep], [row_names[k] for k in keep]
        names += row_names
        kept += lps
        counts.append(len(lps))
        start = end
    return names, np.array(kept, dtype=float), np.array(counts, dtype=np.int64)


def _with_sampled(cols: _Columns, names: list[str], logprobs: np.ndarray,
                  counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The alternatives' logprobs with the sampled token's appended to each row that has
    alternatives but does not list it (when its logprob is known), and the new counts."""
    ends = np.cumsum(counts).tolist()
    missing = [i for i, (text, start, end) in enumerate(zip(cols.texts, [0, *ends], ends))
               if end > start and text not in names[start:end]]
    if missing:
        sampled = cols.logprobs[missing]
        with np.errstate(invalid="ignore"):
            wanted = (sampled > SENTINEL) & (sampled != math.inf)  # known(), for an array
        rows = np.asarray(missing, dtype=np.int64)[wanted]
        if len(rows):
            logprobs = np.insert(logprobs, np.asarray(ends, dtype=np.int64)[rows], sampled[wanted])
            counts = counts.copy()
            counts[rows] += 1
    return logprobs, counts


_PERCENT = np.array([f" {k / 10:.1f}%" for k in range(1001)], dtype=object)  # " 0.0%" .. " 100.0%"


def _alternative_strings(names: list[str], logprobs: np.ndarray, counts: np.ndarray) -> list[str]:
    """'tok 91.2% | tok 3.1%' per row. All rows are joined as one string and split at the row
    ends ("\\n" can mark them: the shown tokens have theirs escaped), since a Python step per
    alternative (an f-string, a join per row) is what costs here."""
    n = len(counts)
    if not names:
        return [""] * n
    shown = {name: visible_token(name) for name in set(names)}
    percent = np.rint(np.exp(np.minimum(logprobs, 0.0)) * 1000).astype(np.int64)
    parts = [" | "] * (3 * len(names))  # name, percent, separator, name, ...
    parts[0::3] = map(shown.__getitem__, names)
    parts[1::3] = _PERCENT[percent].tolist()
    rows = np.flatnonzero(counts)  # the rows with alternatives
    last_items = np.cumsum(counts)[rows] - 1
    ended = np.diff(np.append(rows, n))  # the row and the empty rows after it
    for item, k in zip(last_items.tolist(), ended.tolist()):
        parts[3 * item + 2] = "\n" * k
    return ("\n" * int(rows[0]) + "".join(parts)).split("\n")[:-1]


def _segment_entropy(flat: Sequence[float] | np.ndarray, counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """Entropy (bits) of each renormalised segment of `flat`; NaN where a segment is empty."""
    counts_a = np.asarray(counts, dtype=np.int64)
    out = np.full(len(counts_a), np.nan)
    if len(flat) == 0:
        return out
    values = np.asarray(flat, dtype=float)
    nonempty = counts_a > 0
    sizes = counts_a[nonempty]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    peak = np.repeat(np.maximum.reduceat(values, starts), sizes)
    weights = np.exp(values - peak)
    total = np.add.reduceat(weights, starts)
    p = weights / np.repeat(total, sizes)
    plogp = np.zeros_like(p)
    np.multiply(p, np.log(p, where=p > 0, out=np.zeros_like(p)), out=plogp, where=p > 0)
    out[nonempty] = np.maximum(-np.add.reduceat(plogp, starts) / _LN2, 0.0)
    return out


def entropy_of(top_logprobs: Iterable[TopLogprob | float]) -> float | None:
    """Entropy in bits of the renormalised alternatives (TopLogprob objects or bare logprobs);
    None when there are none with a known logprob."""
    values = [item if isinstance(item, (int, float)) else item.logprob for item in top_logprobs]
    values = [v for v in values if known(v)]
    if not values:
        return None
    return float(_segment_entropy(values, [len(values)])[0])


def perplexity(tokens: Sequence[TokenLogprob]) -> float | None:
    """exp(-mean logprob) over tokens with a known logprob; None when there are none."""
    values = _known_logprobs(tokens)
    if not values:
        return None
    return math.exp(-math.fsum(values) / len(values))


def total_logprob(tokens: Sequence[TokenLogprob]) -> float:
    """Sum of the known logprobs (the sequence's log-likelihood, sentinel tokens left out)."""
    return math.fsum(_known_logprobs(tokens))


def _known_logprobs(tokens: Sequence[TokenLogprob]) -> list[float]:
    lp = _chosen_logprobs(tokens)
    with np.errstate(invalid="ignore"):
        return lp[(lp > SENTINEL) & (lp != math.inf)].tolist()  # known(), for an array


def _chosen_logprobs(tokens: Sequence[TokenLogprob]) -> np.ndarray:
    """The sampled tokens' logprobs as sent: from `_read`'s cache when the list was read, else
    from the objects (one field of each: much cheaper than reading the whole list)."""
    cols = _cached(tokens)
    if cols is not None:
        return cols.logprobs
    return np.fromiter((tok.logprob for tok in tokens), dtype=float, count=len(tokens))


def chosen_probability_series(tokens: Sequence[TokenLogprob], name: str = "probability") -> pd.Series:
    """The chosen token's probability along the answer, indexed by position (0 outside top 20)."""
    lp = _chosen_logprobs(tokens)
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.where(lp > SENTINEL, np.exp(np.minimum(lp, 0.0)), 0.0)
    return pd.Series(p, index=pd.RangeIndex(len(tokens), name="position"), name=name)


def probability_chart_data(runs: Mapping[str, Sequence[TokenLogprob]]) -> pd.DataFrame:
    """Wide frame for st.line_chart: one column per run label, indexed by position."""
    if not runs:
        return pd.DataFrame(index=pd.RangeIndex(0, name="position"))
    return pd.concat({label: chosen_probability_series(tokens) for label, tokens in runs.items()}, axis=1)


# --- two answers ----------------------------------------------------------------------


@dataclass(frozen=True)
class AlignedRow:
    op: str  # equal | replace | insert | delete
    i: int | None  # index into a (None for insert)
    j: int | None  # index into b (None for delete)


@dataclass
class Alignment:
    """Two token sequences lined up by difflib over their token strings."""

    a: Sequence[TokenLogprob]
    b: Sequence[TokenLogprob]
    opcodes: list[tuple[str, int, int, int, int]]
    rows: list[AlignedRow] = field(default_factory=list)

    @property
    def first_divergence(self) -> int | None:
        return first_difference([t.token for t in self.a], [t.token for t in self.b])

    @property
    def equal_count(self) -> int:
        return sum(i2 - i1 for tag, i1, i2, _, _ in self.opcodes if tag == "equal")

    @property
    def similarity(self) -> float:
        """difflib's ratio: 2 * matches / (len(a) + len(b)); 1.0 for two empty answers."""
        total = len(self.a) + len(self.b)
        return 1.0 if total == 0 else 2.0 * self.equal_count / total


def _rows_from_opcodes(opcodes: Iterable[tuple[str, int, int, int, int]]) -> list[AlignedRow]:
    rows: list[AlignedRow] = []
    append = rows.append
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            rows.extend(AlignedRow("equal", i, j) for i, j in zip(range(i1, i2), range(j1, j2)))
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(paired):
            append(AlignedRow("replace", i1 + k, j1 + k))
        for i in range(i1 + paired, i2):
            append(AlignedRow("delete", i, None))
        for j in range(j1 + paired, j2):
            append(AlignedRow("insert", None, j))
    return rows


def align(a_tokens: Sequence[TokenLogprob], b_tokens: Sequence[TokenLogprob]) -> Alignment:
    """Line two answers up token by token (difflib over the token strings, autojunk off)."""
    codes = opcodes([t.token for t in a_tokens], [t.token for t in b_tokens])
    return Alignment(a=a_tokens, b=b_tokens, opcodes=codes, rows=_rows_from_opcodes(codes))


def first_difference(a: Sequence[str], b: Sequence[str]) -> int | None:
    """The first position where two token sequences differ (the shorter length when one is the
    start of the other); None when they are the same token for token."""
    for position, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return position
    return None if len(a) == len(b) else min(len(a), len(b))


def token_bytes(token: TokenLogprob | TopLogprob) -> bytes:
    """The token's bytes as the server gave them, else the UTF-8 of its text."""
    raw = token.bytes
    if raw is not None:
        try:
            return bytes(raw)
        except (TypeError, ValueError):
            pass
    return token.token.encode("utf-8")


def first_divergence_bytes(a: Sequence[TokenLogprob], b: Sequence[TokenLogprob]) -> int | None:
    """Byte offset where the two answers' texts first differ; None when identical."""
    x = b"".join(token_bytes(t) for t in a)
    y = b"".join(token_bytes(t) for t in b)
    return None if x == y else _common_prefix(x, y)


def _common_prefix(x: bytes | str, y: bytes | str) -> int:
    """Length of the common prefix, by halving (the comparisons run in C)."""
    lo, hi = 0, min(len(x), len(y))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if x[:mid] == y[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def same_tokenizer(a: Sequence[TokenLogprob], b: Sequence[TokenLogprob], model_a: str | None = None,
                   model_b: str | None = None) -> bool:
    """Heuristic: did the two answers come from the same tokenizer?

    - the same model name: yes;
    - where the two texts share a start, do the token boundaries fall at the same offsets
      (needs at least 4 boundaries of evidence on each side; 80% agreement says yes);
    - else, do the first position's top-k alternatives overlap (Jaccard >= 0.3);
    - no evidence either way: assume yes (the token diff is then at worst a coarse diff).
    """
    if model_a and model_b and model_a == model_b:
        return True
    return _same_tokenizer(a, b, [t.token for t in a], [t.token for t in b])


def _same_tokenizer(a: Sequence[TokenLogprob], b: Sequence[TokenLogprob], texts_a: list[str],
                    texts_b: list[str]) -> bool:
    """same_tokenizer's evidence, given the two answers' token texts."""
    if not a or not b:
        return True
    limit = _common_prefix("".join(texts_a), "".join(texts_b))
    bounds_a = _boundaries(texts_a, limit)
    bounds_b = _boundaries(texts_b, limit)
    if min(len(bounds_a), len(bounds_b)) >= 4:
        return len(bounds_a & bounds_b) / len(bounds_a | bounds_b) >= 0.8
    alts_a = {t.token for t in a[0].top_logprobs}
    alts_b = {t.token for t in b[0].top_logprobs}
    if len(alts_a) >= 2 and len(alts_b) >= 2:
        return len(alts_a & alts_b) / len(alts_a | alts_b) >= 0.3
    return True


def _boundaries(pieces: list[str], limit: int) -> set[int]:
    """Offsets where pieces end, up to and including `limit`."""
    ends = list(accumulate(map(len, pieces)))
    return set(ends[:bisect_right(ends, limit)])


def diff_table(a_tokens: Sequence[TokenLogprob], b_tokens: Sequence[TokenLogprob], mode: str = "auto",
               alignment: Alignment | None = None) -> pd.DataFrame:
    """At each aligned position: op, pos_a, pos_b, token_a, token_b, logprob_a, logprob_b,
    delta (b - a), topk_overlap (Jaccard of the two alternative sets).

    mode "token" aligns tokens; "byte" aligns the two texts byte by byte and reports pieces
    split at both sides' token boundaries (token_a/token_b are then the pieces' text, pos_a/pos_b
    and the logprobs those of the tokens the pieces belong to); "auto" picks "byte" when
    `same_tokenizer` says the tokenizers differ. The frame's attrs carry "mode",
    "same_tokenizer" (the heuristic's verdict, whatever the mode) and "first_divergence" (a
    token index, or a byte offset in byte mode; None when the answers are identical).
    """
    if mode not in ("auto", "token", "byte"):
        raise ValueError(f"mode must be 'auto', 'token' or 'byte', got {mode!r}")
    cols_a, cols_b = _read(a_tokens), _read(b_tokens)
    same = _same_tokenizer(a_tokens, b_tokens, cols_a.texts, cols_b.texts)
    use_bytes = mode == "byte" or (mode == "auto" and not same)
    pieces = None
    if use_bytes:
        rows = _byte_rows(a_tokens, b_tokens)
        ops, ia, ib = [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows]
        pieces = [row[3] for row in rows], [row[4] for row in rows]
        divergence = first_divergence_bytes(a_tokens, b_tokens)
    elif alignment is not None:
        ops, ia, ib = [r.op for r in alignment.rows], [r.i for r in alignment.rows], [r.j for r in alignment.rows]
        divergence = first_difference(cols_a.texts, cols_b.texts)
    else:  # straight from the opcodes: no AlignedRow objects to build
        ops, ia, ib = _aligned(opcodes(cols_a.texts, cols_b.texts))
        divergence = first_difference(cols_a.texts, cols_b.texts)
    frame = _diff_frame(cols_a, cols_b, ops, _positions(ia), _positions(ib), pieces)
    frame.attrs.update(mode="byte" if use_bytes else "token", same_tokenizer=same, first_divergence=divergence)
    return frame


def _aligned(codes: Iterable[tuple[str, int, int, int, int]]) -> tuple[list[str], list[int], list[int]]:
    """op, i, j of every aligned row (-1 for the missing side), as `_rows_from_opcodes` orders them."""
    ops: list[str] = []
    ia: list[int] = []
    ib: list[int] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal":
            ops += ["equal"] * (i2 - i1)
            ia += range(i1, i2)
            ib += range(j1, j2)
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        deleted, inserted = i2 - i1 - paired, j2 - j1 - paired
        ops += ["replace"] * paired + ["delete"] * deleted + ["insert"] * inserted
        ia += range(i1, i2)  # the paired rows, then the deleted ones
        ia += [-1] * inserted
        ib += range(j1, j1 + paired)
        ib += [-1] * deleted
        ib += range(j1 + paired, j2)
    return ops, ia, ib


def _positions(indices: list[int | None]) -> np.ndarray:
    """Row indices as int64, -1 where a side is missing (None)."""
    return np.fromiter((-1 if i is None else i for i in indices), dtype=np.int64, count=len(indices))


def _diff_frame(a: _Columns, b: _Columns, ops: list[str], ia: np.ndarray, ib: np.ndarray,
                pieces: tuple[list[str | None], list[str | None]] | None) -> pd.DataFrame:
    """ia, ib: row indices (-1 for the missing side); pieces: each row's text on each side in
    byte mode (None: the whole token's text)."""
    la, lb = _logprobs_with_gap(a)[ia], _logprobs_with_gap(b)[ib]  # index -1 is the NaN gap
    texts_a, texts_b = a.texts + [None], b.texts + [None]
    ia_list, ib_list = ia.tolist(), ib.tolist()
    tok_a, tok_b = [texts_a[i] for i in ia_list], [texts_b[j] for j in ib_list]
    if pieces is not None:
        tok_a = [text if text is not None else whole for text, whole in zip(pieces[0], tok_a)]
        tok_b = [text if text is not None else whole for text, whole in zip(pieces[1], tok_b)]
    overlap = np.full(len(ops), np.nan)
    both = (ia >= 0) & (ib >= 0)
    if both.any():
        overlap[both] = _overlaps(a, b, ia[both], ib[both])
    return pd.DataFrame(
        {
            "op": pd.Series(ops, dtype=object),
            "pos_a": pd.arrays.IntegerArray(ia.copy(), ia < 0),
            "pos_b": pd.arrays.IntegerArray(ib.copy(), ib < 0),
            "token_a": pd.Series(tok_a, dtype=object),
            "token_b": pd.Series(tok_b, dtype=object),
            "logprob_a": la,
            "logprob_b": lb,
            "delta": lb - la,
            "topk_overlap": overlap,
        },
        columns=DIFF_COLUMNS,
    )


def _overlaps(a: _Columns, b: _Columns, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Jaccard of the alternative sets of rows ia[k] of a and ib[k] of b; NaN when both are
    empty. In numpy (Python sets cost ~3 us a row): each token text gets an integer code, each
    row becomes a sorted line of its distinct codes, and the tokens two rows share are the
    equal neighbours once their two lines are sorted together."""
    names = np.array(a.names + b.names, dtype=object)
    codes = pd.factorize(names)[0]
    if len(codes) and codes.min() < 0:  # None or NaN among the names (never from the wire): code them too
        codes = pd.factorize(names, use_na_sentinel=False)[0]
    rows_a, sizes_a = _code_rows(codes[:len(a.names)], a.counts, 0)
    rows_b, sizes_b = _code_rows(codes[len(a.names):], b.counts, rows_a.shape[1])
    pairs = np.concatenate([rows_a[ia], rows_b[ib]], axis=1)
    pairs.sort(axis=1)
    common = (pairs[:, 1:] == pairs[:, :-1]).sum(axis=1)
    union = sizes_a[ia] + sizes_b[ib] - common
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, common / union, np.nan)


def _code_rows(codes: np.ndarray, counts: np.ndarray, pad_from: int) -> tuple[np.ndarray, np.ndarray]:
    """One sorted line of codes per row, and its number of distinct codes. Padding and repeats
    become negative numbers unique to their column (-pad_from - 1, ...), so they match nothing."""
    n, width = len(counts), int(counts.max(initial=0))
    row = np.repeat(np.arange(n), counts)
    column = np.arange(len(codes)) - np.repeat(np.cumsum(counts) - counts, counts)
    lines = np.full((n, width), -1, dtype=np.int64)
    lines[row, column] = codes
    lines.sort(axis=1)
    unused = lines < 0
    unused[:, 1:] |= lines[:, 1:] == lines[:, :-1]
    return np.where(unused, -np.arange(pad_from + 1, pad_from + width + 1), lines), width - unused.sum(axis=1)


def _logprobs_with_gap(cols: _Columns) -> np.ndarray:
    """The tokens' logprobs (NaN where unknown) and one NaN more at the end, for index -1."""
    with np.errstate(invalid="ignore"):
        values = np.where(cols.logprobs > SENTINEL, cols.logprobs, np.nan)
    return np.append(values, np.nan)


def _byte_rows(a: Sequence[TokenLogprob], b: Sequence[TokenLogprob]):
    """Align the two byte strings; cut each aligned span at every token boundary of either side."""
    a_bytes, b_bytes = [token_bytes(t) for t in a], [token_bytes(t) for t in b]
    x, y = b"".join(a_bytes), b"".join(b_bytes)
    owner_a, owner_b = _owners(a_bytes), _owners(b_bytes)
    # cut only where a character ends: a character split across byte tokens stays one piece
    starts_a, starts_b = starts(_joined(a, a_bytes)), starts(_joined(b, b_bytes))
    rows = []
    for tag, i1, i2, j1, j2 in byte_opcodes(x, y):
        if tag == "equal":
            shift = j1 - i1
            cuts = sorted(set(_cuts(starts_a, i1, i2)) | {s - shift for s in _cuts(starts_b, j1, j2)})
            for lo, hi in zip(cuts, cuts[1:]):
                piece = _decode(x[lo:hi])
                rows.append(("equal", owner_a[lo], owner_b[lo + shift], piece, piece))
            continue
        pieces_a = _pieces(x, i1, i2, starts_a, owner_a)
        pieces_b = _pieces(y, j1, j2, starts_b, owner_b)
        paired = min(len(pieces_a), len(pieces_b))
        for k in range(paired):
            rows.append(("replace", pieces_a[k][0], pieces_b[k][0], pieces_a[k][1], pieces_b[k][1]))
        for owner, text in pieces_a[paired:]:
            rows.append(("delete", owner, None, text, None))
        for owner, text in pieces_b[paired:]:
            rows.append(("insert", None, owner, None, text))
    return rows


def _joined(tokens: Sequence[TokenLogprob], raw: list[bytes]) -> list[bytes]:
    """The bytes of each `pieces` piece (whole characters)."""
    return [b"".join(raw[piece.start:piece.end]) for piece in pieces(tokens)]


def _owners(pieces: list[bytes]) -> list[int]:
    """For every byte offset, the index of the token it belongs to."""
    owners: list[int] = []
    for index, piece in enumerate(pieces):
        owners.extend([index] * len(piece))
    return owners


def _cuts(starts: list[int], lo: int, hi: int) -> list[int]:
    """lo, the token starts strictly inside (lo, hi), and hi."""
    return [lo, *starts[bisect_right(starts, lo):bisect_left(starts, hi)], hi]


def _pieces(data: bytes, lo: int, hi: int, starts: list[int], owners: list[int]) -> list[tuple[int, str]]:
    if hi <= lo:
        return []
    cuts = _cuts(starts, lo, hi)
    return [(owners[p], _decode(data[p:q])) for p, q in zip(cuts, cuts[1:]) if q > p]


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
