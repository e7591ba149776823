"""Repeat's prefix tree (playground.analysis.prefix_tree) on known samples, and its DOT."""

from __future__ import annotations

import re

import pytest

from playground.analysis import prefix_tree

SAMPLES = [
    ["The", " sky", " is", " blue", "."],
    ["The", " sky", " is", " blue", "."],
    ["The", " sky", " is", " grey", "."],
    ["The", " sky", " is", " blue"],
    ["A", " cloud", "."],
]
LOGPROBS = [
    [-0.1, -0.2, -0.1, -0.5, -0.1],
    [-0.1, -0.2, -0.1, -0.5, -0.1],
    [-0.1, -0.2, -0.1, -1.5, -0.3],
    [-0.1, -0.2, -0.1, -0.5],
    [-2.0, -1.0, -0.2],
]


def shape(node: prefix_tree.Node) -> list:
    return [(child.text if not child.end else "(end)", child.samples, shape(child)) for child in node.children]


def test_the_samples_merged_into_a_tree():
    root = prefix_tree.build(SAMPLES, LOGPROBS)
    assert shape(root) == [
        ("The sky is", [1, 2, 3, 4], [
            (" blue", [1, 2, 4], [
                (".", [1, 2], []),
                ("(end)", [4], []),
            ]),
            (" grey.", [3], []),
        ]),
        ("A cloud.", [5], []),
    ]
    the, a = root.children
    assert the.count == 4 and the.mean_logprob == pytest.approx((-0.1 - 0.2 - 0.1) / 3)
    blue, grey = the.children
    assert blue.mean_logprob == pytest.approx(-0.5) and grey.mean_logprob == pytest.approx(-0.9)
    assert [leaf.samples for leaf in root.leaves()] == [[5], [3], [1, 2], [4]]  # breadth first
    # identical samples: one chain; no logprobs: no mean
    single = prefix_tree.build([["x", "y"], ["x", "y"]])
    assert shape(single) == [("xy", [1, 2], [])] and single.children[0].mean_logprob is None


def test_the_dot_escapes_every_label():
    hostile = [['"] ; n0 -> n9 [label="x', "\\N\\l", "<b>"], ['"] ; n0 -> n9 [label="x', "\n", "\x07ok"]]
    dot = prefix_tree.to_dot(prefix_tree.build(hostile), {2: "Leaf 1"})
    # every line is the header, a node or an edge of ours: the text made no statement of its own
    body = dot.splitlines()[4:-1]
    node = re.compile(r'  n\d+ \[label="(?:[^"\\]|\\.)*", fillcolor="#[0-9a-f]{6}"\];')
    nodes = [line for line in body if node.fullmatch(line)]
    edges = [line for line in body if re.fullmatch(r'  n\d+ -> n\d+ \[label="\d+"\];', line)]
    assert len(nodes) == 3 and len(edges) == 3 and len(body) == 6, dot
    assert '\\"] ; n0 -> n9 [label=\\"x' in dot  # the quotes escaped: still inside the label
    assert "\\\\N\\\\l" in dot  # no Graphviz escape left
    assert "\x07" not in dot and "Leaf 1: " in dot
