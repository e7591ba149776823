"""Repeat's samples merged into a prefix tree of tokens: where they go their own way. A node is
a stretch of tokens that the same samples share (a chain without a fork is one node); a fork's
children are the ways the samples went on, each with how many samples took it and its mean
logprob; a sample that stops where others go on takes an "end" leaf. `to_dot` writes the tree
in Graphviz's DOT with every label escaped (model text is data, never DOT syntax)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

END_LABEL = "(end)"
LABEL_CHARS = 48  # of a node's text shown in its box (the start and the end of longer ones)


@dataclass
class Node:
    tokens: list[str] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)  # the sample numbers through this node
    logprobs: list[float] = field(default_factory=list)  # every known logprob of its tokens, all its samples
    children: list["Node"] = field(default_factory=list)
    end: bool = False  # an "end" leaf: these samples stop here
    number: int = 0  # its place in the tree (breadth first), set by build

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def mean_logprob(self) -> float | None:
        return math.fsum(self.logprobs) / len(self.logprobs) if self.logprobs else None

    @property
    def leaf(self) -> bool:
        return not self.children

    def walk(self) -> list["Node"]:
        """The nodes, breadth first (the root first)."""
        out, queue = [], [self]
        while queue:
            node = queue.pop(0)
            out.append(node)
            queue.extend(node.children)
        return out

    def leaves(self) -> list["Node"]:
        return [node for node in self.walk() if node.leaf and node is not self]


def build(sequences: Sequence[Sequence[str]], logprobs: Sequence[Sequence[float | None]] | None = None,
          numbers: Sequence[int] | None = None) -> Node:
    """The tree of these token sequences (sample i is numbers[i], 1-based by default); logprobs,
    when given, one per token (None: unknown) for each sequence."""
    numbers = list(numbers) if numbers is not None else list(range(1, len(sequences) + 1))
    root = Node()
    _grow(root, list(range(len(sequences))), 0, sequences, logprobs, numbers)
    for number, node in enumerate(root.walk()):
        node.number = number
    return root


def _grow(node: Node, members: list[int], depth: int, sequences, logprobs, numbers) -> None:
    """Split `members` (indices of sequences that share their first `depth` tokens) by their next
    token; a group that stays together extends one child as far as it can."""
    ended = [m for m in members if depth >= len(sequences[m])]
    going = [m for m in members if depth < len(sequences[m])]
    by_token: dict[str, list[int]] = {}
    for m in going:
        by_token.setdefault(sequences[m][depth], []).append(m)
    for group in sorted(by_token.values(), key=lambda g: (-len(g), g[0])):
        child = Node(samples=[numbers[m] for m in group])
        end = depth
        while True:  # extend while the group agrees and nobody stops
            if any(end >= len(sequences[m]) for m in group) or len({sequences[m][end] for m in group}) > 1:
                break
            child.tokens.append(sequences[group[0]][end])
            for m in group:
                value = logprobs[m][end] if logprobs is not None and end < len(logprobs[m]) else None
                if value is not None and math.isfinite(value) and value > -9999:
                    child.logprobs.append(value)
            end += 1
        node.children.append(child)
        if not all(end >= len(sequences[m]) for m in group):
            _grow(child, group, end, sequences, logprobs, numbers)
    if ended and going:  # some stop where others go on: an end leaf for them
        node.children.append(Node(samples=[numbers[m] for m in ended], end=True))


def label(node: Node) -> str:
    """A node's box: its text (whitespace made visible, the middle of a long one left out), how
    many samples went this way and their mean logprob per token."""
    if node.end:
        text = END_LABEL
    else:
        text = node.text.replace("\n", "\u21b5").replace("\t", "\u21e5")
        if len(text) > LABEL_CHARS:
            half = LABEL_CHARS // 2
            text = text[:half] + " \u2026 " + text[-half:]
        text = text.replace(" ", "\u2423") if text.strip() == "" else text
    counts = f"\u00d7{node.count}"
    mean = node.mean_logprob
    if mean is not None:
        counts += f" \u00b7 mean logprob {mean:.2f}"
    return f"{text}\n{counts}"


def dot_string(text: str) -> str:
    """A DOT quoted string holding exactly `text`: backslashes and quotes escaped (a backslash
    would otherwise start one of Graphviz's escapes, \\N or \\l), line ends as \\n, other control
    characters dropped."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r\n", "\n").replace("\r", "\n")
    out = "".join(ch for ch in out if ch == "\n" or ch.isprintable())
    return '"' + out.replace("\n", "\\n") + '"'


def to_dot(root: Node, leaf_names: dict[int, str] | None = None) -> str:
    """The tree in DOT: left to right, one box per node, the root named "start"."""
    leaf_names = leaf_names or {}
    lines = ["digraph prefix_tree {", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fillcolor="#f6f8fa", fontname="monospace", fontsize=10];',
             f"  n0 [label={dot_string('start')}];"]
    for node in root.walk()[1:]:
        text = label(node)
        if node.number in leaf_names:
            text = f"{leaf_names[node.number]}: {text}"
        fill = "#fff1a8" if node.end else ("#dcefdc" if node.leaf else "#f6f8fa")
        lines.append(f'  n{node.number} [label={dot_string(text)}, fillcolor="{fill}"];')
    for node in root.walk():
        for child in node.children:
            lines.append(f"  n{node.number} -> n{child.number} [label={dot_string(str(child.count))}];")
    lines.append("}")
    return "\n".join(lines)
