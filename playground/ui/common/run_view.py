"""Showing a Run: usage and timings, each choice's text, tool calls, errors in the server's
words, and logprobs (a token heatmap, a token inspector with the top-k alternatives, the
table and the perplexity). Compare and History reuse `show_run` and `token_heatmap_html`.

Model text is data: every piece of it goes through playground.textsafe before it reaches
st.html or st.markdown, so `<script>` or `<img onerror=...>` shows as those characters.
"""

from __future__ import annotations

import math

import streamlit as st

from playground.analysis import logprobs as lp
from playground.analysis.compare_tables import format_seconds
from playground.client.run import ChoiceResult, Run
from playground.client.schema import TokenLogprob, TopLogprob
from playground.client.token_limit import ignored_limit, other_field
from playground.textsafe import escape_html, escape_markdown
from playground.ui.common import tool_calls_view

# Probability buckets, most likely first: (lower bound, background). Fixed, never from data.
PALETTE: list[tuple[float, str]] = [
    (0.90, "#dcefdc"),
    (0.70, "#ecf4c4"),
    (0.50, "#fff1a8"),
    (0.30, "#ffd6a0"),
    (0.10, "#ffb394"),
    (0.00, "#ff8f85"),
]
UNKNOWN_COLOUR = "#d9d9d9"  # logprob -9999: outside the top 20
TEXT_COLOUR = "#1f2328"

ANSWER_STYLE = (
    "white-space:pre-wrap;word-break:break-word;font-size:1rem;line-height:1.6;"
    "padding:0.75rem 1rem;border-radius:0.5rem;background:rgba(127,127,127,0.06);"
    "border:1px solid rgba(127,127,127,0.18);min-height:2.6rem;"
)


def colour_for(probability: float | None) -> str:
    if probability is None or math.isnan(probability):
        return UNKNOWN_COLOUR
    for bound, colour in PALETTE:
        if probability >= bound:
            return colour
    return PALETTE[-1][1]


def _probability(token: TokenLogprob | TopLogprob) -> float | None:
    return math.exp(min(token.logprob, 0.0)) if lp.known(token.logprob) else None


def token_heatmap_html(tokens: list[TokenLogprob]) -> str:
    """The answer as spans coloured by the chosen token's probability; every token escaped."""
    spans = []
    for position, token in enumerate(tokens):
        p = _probability(token)
        odds = f"p={p:.1%}  logprob={token.logprob:.3f}" if p is not None else "outside the top 20"
        tip = f"#{position}  {odds}"
        text = token.token
        shown = escape_html(text.replace("\n", "\u21b5")) or "&#8203;"
        spans.append(
            f'<span title="{escape_html(tip)}" data-pos="{position}" style="background:{colour_for(p)};'
            f'color:{TEXT_COLOUR};border-radius:3px;padding:1px 0;margin:0 1px 0 0;">{shown}</span>'
            + "<br>" * text.count("\n")
        )
    keys = [(f"&#8805;{bound:.0%}", colour) for bound, colour in PALETTE]
    if any(_probability(token) is None for token in tokens):  # only when the server reported one
        keys.append(("no probability (outside the server's top 20)", UNKNOWN_COLOUR))
    legend = "".join(
        f'<span style="background:{colour};color:{TEXT_COLOUR};border-radius:3px;padding:0 6px;white-space:nowrap;">'
        f"{label}</span>"
        for label, colour in keys
    )
    return (
        f'<div class="pg-heatmap" style="white-space:pre-wrap;word-break:break-word;line-height:1.9;'
        f'font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:0.9rem;">{"".join(spans)}</div>'
        # a flex row that wraps: in a narrow column (four Compare panes) the keys go on more lines
        f'<div class="pg-heatmap-legend" style="display:flex;flex-wrap:wrap;align-items:center;gap:2px 4px;'
        f'font-size:0.75rem;margin-top:0.4rem;opacity:0.85;"><span>Chosen-token probability:</span>{legend}</div>'
    )


def answer_html(text: str) -> str:
    """One finished answer as literal text (escaped; newlines and spaces kept). A streaming one is
    drawn by live_view.live_text, with the same style."""
    return f'<div class="pg-answer" style="{ANSWER_STYLE}">{escape_html(text)}</div>'


# --- a whole run ----------------------------------------------------------------------------


def show_error(run: Run) -> None:
    if run.error is None:
        return
    error = run.error
    head = f"{error.status_code} {error.kind}" if error.status_code else error.kind
    st.error(f"**{escape_markdown(head)}**: {escape_markdown(error.message)}", icon=":material/error:")


def show_status(run: Run) -> None:
    if run.cancelled:
        st.warning("Stopped by you: the answer below is partial.", icon=":material/stop_circle:")
    elif run.partial:
        st.warning("The stream broke off: the answer below is partial.", icon=":material/warning:")


def run_stats(run: Run) -> list[tuple[str, str, str]]:
    """(label, value, tooltip) for the stats strip of a run."""
    usage = run.usage
    prompt = str(usage.prompt_tokens) if usage is not None else "—"
    completion = str(usage.completion_tokens) if usage is not None else f"{run.completion_tokens} (counted)"
    total = str(usage.total_tokens) if usage is not None else "—"
    rate = f"{run.tokens_per_s:.1f}" if run.tokens_per_s else "—"
    if len(run.choices) > 1:  # say which choice stopped why
        reasons = [f"{c.finish_reason} (choice {c.index + 1})" for c in run.choices if c.finish_reason]
    else:
        reasons = [c.finish_reason for c in run.choices if c.finish_reason]
    cached = usage.cached_tokens if usage is not None else None
    return [
        ("Prompt tokens", prompt, "Tokens in the request, as the server counted them."),
        *([("Cached tokens", str(cached), "Prompt tokens the server reused from an earlier request with the same "
            "beginning instead of reading them again (its usage's prompt_tokens_details.cached_tokens).")]
          if cached is not None else []),
        ("Completion tokens", completion, "Tokens generated, all choices together."),
        ("Total tokens", total, "Prompt plus completion."),
        ("First token", format_seconds(run.ttft_s), "Time to first token: from sending the request to the first text."),
        ("Total time", format_seconds(run.total_s), "From sending the request to the end of the answer."),
        ("Tokens/s", rate, "Completion tokens per second after the first token."),
        ("Finish reason", ", ".join(reasons) or ("cancelled" if run.cancelled else "—"),
         "Why the model stopped: stop, length, tool_calls, content_filter..."),
    ]


def stats_html(stats: list[tuple[str, str, str]]) -> str:
    cells = "".join(
        f'<div title="{escape_html(tip)}" style="padding:0.3rem 0.65rem;border:1px solid rgba(127,127,127,0.22);'
        f'border-radius:0.5rem;min-width:0;overflow:hidden;">'
        f'<div style="font-size:0.68rem;opacity:0.7;white-space:nowrap;">{escape_html(label)}</div>'
        f'<div class="pg-stat" data-label="{escape_html(label)}" style="font-size:1rem;font-weight:600;'
        f'font-variant-numeric:tabular-nums;white-space:nowrap;">{escape_html(value)}</div></div>'
        for label, value, tip in stats
    )
    return (f'<div class="pg-stats" style="display:grid;grid-template-columns:repeat(auto-fill,minmax(6.4rem,1fr));'
            f'gap:0.5rem;margin:0.25rem 0 0.5rem;">{cells}</div>')


def show_metrics(run: Run) -> None:
    st.html(stats_html(run_stats(run)))
    if run.usage is None and not run.error and not run.partial:
        st.caption("The server sent no usage; the completion tokens were counted from the stream.")
    show_ignored_limit(run)


def show_ignored_limit(run: Run) -> None:
    """Issue 22: a server that reads the other token-limit field generates past the limit unwarned."""
    ignored = ignored_limit(run)
    if ignored is None:
        return
    asked = (f"at most {ignored.limit} tokens" if ignored.choices == 1 else
             f"at most {ignored.limit} tokens per choice ({ignored.allowed} for {ignored.choices} choices)")
    other = other_field(ignored.field)
    st.warning(f"**The server ignored the token limit**: the request asked for {asked} in `{ignored.field}`, and "
               f"it generated {ignored.generated}. It may read `{other}` instead: set the endpoint's "
               f"token_limit_field to `{other}` (in its [endpoints] table, or in the Custom endpoint's form).",
               icon=":material/speed:")


def show_run(run: Run, key: str, answers: tool_calls_view.ToolAnswers | None = None) -> None:
    """Everything about one run. `key` keeps the widget keys of several runs apart; `answers`:
    how the page answers tool calls (the Playground's result boxes), None to show them only."""
    show_error(run)
    show_status(run)
    if run.choices or not run.error:
        show_metrics(run)
    choices = run.choices
    if len(choices) > 1:
        tabs = st.tabs([f"Choice {c.index + 1}" for c in choices])
        for tab, choice in zip(tabs, choices):
            with tab:
                show_choice(choice, f"{key}_c{choice.index}", run, answers)
    elif choices:
        show_choice(choices[0], f"{key}_c0", run, answers)


def show_choice(choice: ChoiceResult, key: str, run: Run | None = None,
                answers: tool_calls_view.ToolAnswers | None = None) -> None:
    if choice.text or not choice.tool_calls:
        st.html(answer_html(choice.text))
    if choice.refusal:
        st.warning(f"Refusal: {escape_markdown(choice.refusal)}")
    if choice.tool_calls:
        tool_calls_view.show(choice, run.request.tools if run is not None else None, key, answers)
    if choice.logprobs:
        show_logprobs(choice.logprobs, key)


# --- logprobs -------------------------------------------------------------------------------


def _token_label(position: int, token: TokenLogprob) -> str:
    p = _probability(token)
    prob = f"{p:.1%}" if p is not None else "not in top 20"
    return f"#{position}  {lp.visible_token(token.token)!r}  ({prob})"


def show_logprobs(tokens: list[TokenLogprob], key: str) -> None:
    table = lp.token_table(tokens)
    perplexity = lp.perplexity(tokens)
    st.markdown("##### Logprobs")
    mean_p = table["probability"].mean() if len(table) else float("nan")
    lowest = int(table["probability"].fillna(0).idxmin()) if len(table) else None
    st.html(stats_html([
        ("Perplexity", f"{perplexity:.3f}" if perplexity is not None else "—",
         "exp(-mean logprob) of the answer's tokens: 1 means the model was sure of every token."),
        ("Mean probability", f"{mean_p:.1%}" if not math.isnan(mean_p) else "—", "Mean chosen-token probability."),
        ("Tokens", str(len(tokens)), "Tokens with logprobs."),
        ("Least likely", _token_label(lowest, tokens[lowest]) if lowest is not None else "—",
         "The token the model was least sure of: its position, the token and its probability."),
    ]))
    st.html(token_heatmap_html(tokens))

    st.markdown("###### Inspect a token")
    position = st.selectbox(
        "Token",
        list(range(len(tokens))),
        index=lowest,
        format_func=lambda i: _token_label(i, tokens[i]),
        key=f"{key}_inspect",
        help="Pick a position (the least likely one is chosen first) to see what else the model considered.",
    )
    if position is not None:
        show_alternatives(tokens[position], position)

    with st.expander("Token table", expanded=False):
        shown = table.copy()
        shown["token"] = shown["token"].map(lp.visible_token)
        st.dataframe(
            shown,
            hide_index=True,
            key=f"{key}_table",
            column_config={
                "position": st.column_config.NumberColumn("#", width="small"),
                "token": st.column_config.TextColumn("token"),
                "probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0,
                                                               format="percent"),
                "logprob": st.column_config.NumberColumn("logprob", format="%.3f"),
                "entropy": st.column_config.NumberColumn("entropy (bits)", format="%.2f",
                                                         help="Entropy of the top-k alternatives, renormalised."),
                "alternatives": st.column_config.TextColumn("alternatives", width="large"),
            },
        )


def show_alternatives(token: TokenLogprob, position: int) -> None:
    p = _probability(token)
    entropy = lp.entropy_of(token.top_logprobs)
    st.markdown(
        f"Position **{position}**: chosen **{escape_markdown(lp.visible_token(token.token))}** with "
        f"probability **{(f'{p:.2%}' if p is not None else 'unknown')}** "
        f"(logprob {token.logprob:.3f})" + (f", entropy of the top-k {entropy:.2f} bits" if entropy is not None else "")
    )
    if not token.top_logprobs:
        st.caption("No alternatives: ask for top_logprobs (1 to 20) in the Logprobs group.")
        return
    rows = [
        {
            "rank": rank,
            "token": lp.visible_token(alt.token),
            "probability": _probability(alt),
            "logprob": alt.logprob if lp.known(alt.logprob) else None,
            "chosen": alt.token == token.token,
        }
        for rank, alt in enumerate(token.top_logprobs, start=1)
    ]
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "rank": st.column_config.NumberColumn("rank", width="small"),
            "probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0,
                                                           format="percent"),
            "logprob": st.column_config.NumberColumn("logprob", format="%.3f"),
            "chosen": st.column_config.CheckboxColumn("chosen", width="small"),
        },
    )
