"""Compare's Repeat: send one pane's request k times and show the distinct answers with their
counts, the exact-match rate, where the samples fork and each sample's total logprob. With a
fixed seed it is a determinism check. (The grouping itself is playground.analysis.repeat.summarize.)"""

from __future__ import annotations

import math

import streamlit as st

from playground.analysis import compare_tables, prefix_tree
from playground.analysis import logprobs as lp
from playground.analysis.repeat import MAX_REPEAT, RepeatSummary, summarize, words
from playground.textsafe import code_span, escape_markdown
from playground.ui.common import live_view, run_view, token_heatmap, widget_sync
from playground.ui.compare import state
from playground.ui.compare.panes import pane_label, prepare

PREFIX_CHARS = 80


def start_repeat() -> None:
    i = widget_sync.value(state.REPEAT_PANE, 0)
    items, presets, problems = prepare([i])
    if problems:
        state.refused(*problems)
        return
    k = max(2, min(int(widget_sync.value(state.REPEAT_K) or 5), MAX_REPEAT))
    endpoint, request = items[0]
    state.start_repeat(endpoint, request, k, presets[0])


def repeat_section(panes: list[int]) -> None:
    st.divider()
    st.subheader("Repeat")
    st.caption("Send one pane's request k times: distinct answers with counts, the exact-match rate, where "
               "the samples fork and each sample's total logprob. With a fixed seed it is a determinism check.")
    busy = state.running()
    widget_sync.keep_valid(state.REPEAT_PANE, panes, panes[0])
    if not widget_sync.has(state.REPEAT_K):
        widget_sync.write(state.REPEAT_K, 5)
    left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
    labels = {i: pane_label(i) for i in panes}
    left.selectbox("Pane", panes, key=widget_sync.key(state.REPEAT_PANE), format_func=labels.get, disabled=busy,
                   persist_state=state.KEEP)
    middle.number_input("k", 2, MAX_REPEAT, step=1, key=widget_sync.key(state.REPEAT_K), disabled=busy,
                        persist_state=state.KEEP)
    right.button("Repeat", key="cmp.repeat_go", on_click=start_repeat, disabled=busy, width="stretch")
    current = state.repeat_batch()
    with st.container():
        if current is not None:
            live_view.replace_stale()
            live_view.live_progress(current)
        elif runs := st.session_state.get(state.REPEAT_RUNS):
            with st.container():
                show_repeat(summarize(runs), st.session_state.get(state.REPEAT_SEEDED, False))


def show_repeat(result: RepeatSummary, seeded: bool) -> None:
    rate = result.exact_match_rate
    a, b, c, d = st.columns(4)
    a.metric("Samples", result.k)
    b.metric("Distinct answers", result.distinct)
    c.metric("Exact-match rate", "—" if rate is None else f"{rate:.0%}",
             help="Share of samples identical to the most common answer.")
    d.metric("Deterministic", result.determinism(seeded),
             help="Only a seeded request can be checked for determinism: without a seed it is n/a.")
    if result.failed or result.skipped:
        st.caption(f"{result.failed} failed and {result.skipped} never ran (stopped); they are left out above.")
    for note in result.notes:
        st.caption(note)
    if not seeded:
        st.caption("No seed was set, so different samples are expected: set a seed for a determinism check.")
    fork_line(result)
    prefix_tree_view(result)
    st.dataframe(compare_tables.groups_frame(result), hide_index=True, key="cmp.repeat_groups", placeholder="",
                 column_config={"share": st.column_config.NumberColumn(format="percent")})
    st.dataframe(compare_tables.samples_frame(result), hide_index=True, key="cmp.repeat_samples", placeholder="",
                 column_config={"total logprob": st.column_config.NumberColumn(format="%.3f"),
                                "completion tokens": st.column_config.NumberColumn(
                                    help="As the server counted them (its usage); empty when it sent none."),
                                "TTFT (s)": st.column_config.NumberColumn(format="%.3f"),
                                "latency (s)": st.column_config.NumberColumn(format="%.3f")})
    for n, group in enumerate(result.groups, 1):
        with st.expander(f"Answer {n}: {group.count} of {result.k}"):
            st.html(run_view.answer_html(group.text))


def fork_line(result: RepeatSummary) -> None:
    """Where the samples stop agreeing: the prefix they share, then each branch with its count."""
    unit = "token" if result.server_tokens else "word"
    fork = result.fork
    if fork is None:
        if result.k > 1:
            st.markdown(f"**No fork**: every sample is the same, {unit} for {unit}.")
        return
    branches = ", ".join(f"{code_span(lp.visible_token(t))} ×{n}" for t, n in fork.branches.items())
    shared = ("..." + fork.prefix[-PREFIX_CHARS:]) if len(fork.prefix) > PREFIX_CHARS else fork.prefix
    st.markdown(f"**The samples fork at {unit} {fork.position}.** They share: {escape_markdown(shared) or '(nothing)'}"
                f"  \nthen go: {branches}")
    if not result.server_tokens:
        st.caption("Without logprobs the answers are split into words and punctuation, not the model's tokens.")


def prefix_tree_view(result: RepeatSummary) -> None:
    """The samples merged into a prefix tree (a fork's branches with their counts and mean
    logprob per token), drawn by Graphviz from DOT we write (labels escaped); picking a leaf
    shows the sample(s) that ended there."""
    if result.k < 2:
        return
    sequences, logprobs = [], []
    for sample in result.samples:
        tokens = sample.run.choices[0].logprobs if sample.run.choices and result.server_tokens else []
        if tokens:  # the server's tokens, a character split across byte tokens joined
            pieces = lp.pieces(tokens)
            sequences.append([piece.text for piece in pieces])
            logprobs.append([math.fsum(t.logprob for t in tokens[p.start:p.end]) if all(
                lp.known(t.logprob) for t in tokens[p.start:p.end]) else None for p in pieces])
        else:
            sequences.append(words(sample.run.text))
            logprobs.append([])
    root = prefix_tree.build(sequences, logprobs if result.server_tokens else None,
                             [sample.number for sample in result.samples])
    leaves = root.leaves()
    names = {leaf.number: f"Leaf {n}" for n, leaf in enumerate(leaves, 1)}
    st.markdown("###### Where the samples go their own way")
    st.graphviz_chart(prefix_tree.to_dot(root, names), width="stretch")
    runs = {sample.number: sample.run for sample in result.samples}
    def leaf_label(n: int) -> str:
        leaf = leaves[n]
        tail = "stops there" if leaf.end else f"ends with {leaf.text[-30:]!r}"
        return f"Leaf {n + 1}: sample {', '.join(map(str, leaf.samples))}, {tail}"

    pick = st.selectbox("Leaf", range(len(leaves)), key="cmp.repeat_leaf", format_func=leaf_label)
    if pick is None or pick >= len(leaves):
        return
    number = leaves[pick].samples[0]
    run = runs[number]
    st.caption(f"Sample {number}" + (f" (and {len(leaves[pick].samples) - 1} more the same way)"
                                     if len(leaves[pick].samples) > 1 else ""))
    tokens = run.choices[0].logprobs if run.choices else []
    if tokens:
        token_heatmap.token_heatmap(tokens, f"cmp.repeat_leaf_{number}", ident=f"{run.id}.0", top_p=run.request.top_p)
    else:
        st.html(run_view.answer_html(run.text))
