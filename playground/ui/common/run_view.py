"""Showing a Run: usage and timings, each choice's text, tool calls, errors in the server's
words, and logprobs (a token heatmap, a token inspector with the top-k alternatives, the
table and the perplexity). Compare, History and Experiments reuse `show_run`;
the heatmap itself is playground.ui.common.token_heatmap.

Model text is data: every piece of it goes through playground.textsafe before it reaches
st.html or st.markdown, so `<script>` or `<img onerror=...>` shows as those characters.
"""

from __future__ import annotations

import math

import streamlit as st

from playground.analysis import logprobs as lp
from playground.analysis.compare_tables import format_seconds
from playground.client.run import ChoiceResult, Run
from playground.client.schema import TokenLogprob
from playground.client.token_limit import ignored_limit, other_field
from playground.textsafe import escape_html, escape_markdown
from playground.ui.common import branching, prompt_surprisal, token_heatmap, tool_calls_view

ANSWER_STYLE = (
    "white-space:pre-wrap;word-break:break-word;font-size:1rem;line-height:1.6;"
    "padding:0.75rem 1rem;border-radius:0.5rem;background:rgba(127,127,127,0.06);"
    "border:1px solid rgba(127,127,127,0.18);min-height:2.6rem;"
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
    prompt_surprisal.show(run)  # when the reply carried vLLM's prompt_logprobs


def show_choice(choice: ChoiceResult, key: str, run: Run | None = None,
                answers: tool_calls_view.ToolAnswers | None = None) -> None:
    """One choice of a run: its text, refusal, tool calls and logprobs (`run` names the answer
    to the heatmap, which keeps the reader's selected token while it shows the same one)."""
    if choice.text or not choice.tool_calls:
        st.html(answer_html(choice.text))
    if choice.refusal:
        st.warning(f"Refusal: {escape_markdown(choice.refusal)}")
    if choice.tool_calls:
        tool_calls_view.show(choice, run.request.tools if run is not None else None, key, answers)
    if choice.logprobs:
        if run is None:
            show_logprobs(choice.logprobs, key)
            return
        branching.show_refusal()
        chosen = show_logprobs(choice.logprobs, key, ident=f"{run.id}.{choice.index}", top_p=run.request.top_p,
                               branch=branching.offer(run))
        if chosen is not None:
            branching.start(run, choice.index, chosen)


# --- logprobs -------------------------------------------------------------------------------


def _token_label(position: int, token: TokenLogprob, shown: str) -> str:
    p = token_heatmap.probability(token)
    prob = f"{p:.1%}" if p is not None else "not in top 20"
    return f"#{position}  {lp.visible_token(shown)!r}  ({prob})"


def show_logprobs(tokens: list[TokenLogprob], key: str, *, ident: str | None = None,
                  branch: token_heatmap.Branching | None = None, top_p: float | None = None) -> dict | None:
    """The answer's numbers, its token heatmap with the inspector (token_heatmap: click a token,
    move with the arrow keys) and the token table. Returns the inspector's "Continue with this
    token" choice ({position, rank, token}) on the run it was pressed, else None."""
    table = lp.token_table(tokens)
    shown = lp.shown_tokens(tokens)  # a character split across tokens reads as that character
    perplexity = lp.perplexity(tokens)
    st.markdown("##### Logprobs")
    mean_p = table["probability"].mean() if len(table) else float("nan")
    lowest = int(table["probability"].fillna(0).idxmin()) if len(table) else None
    st.html(stats_html([
        ("Perplexity", f"{perplexity:.3f}" if perplexity is not None else "—",
         "exp(-mean logprob) of the answer's tokens: 1 means the model was sure of every token."),
        ("Mean probability", f"{mean_p:.1%}" if not math.isnan(mean_p) else "—", "Mean chosen-token probability."),
        ("Tokens", str(len(tokens)), "Tokens with logprobs."),
        ("Least likely", _token_label(lowest, tokens[lowest], shown[lowest]) if lowest is not None else "—",
         "The token the model was least sure of: its position, the token and its probability."),
    ]))
    chosen = token_heatmap.token_heatmap(tokens, key, ident=ident, branch=branch, top_p=top_p,
                                         entropies=table["entropy"].tolist())

    # built only when asked for: 2,000 rows would cost every finished run's redraw their table
    if st.toggle("Token table", key=f"{key}_table_on", help="Every token with its bytes, probability, logprob, "
                 "entropy and alternatives, in one table."):
        table["token"] = [lp.visible_token(text) for text in shown]
        table.insert(2, "bytes", [lp.bytes_hex(token) for token in tokens])
        st.dataframe(
            table,
            hide_index=True,
            key=f"{key}_table",
            column_config={
                "position": st.column_config.NumberColumn("#", width="small"),
                "token": st.column_config.TextColumn("token"),
                "bytes": st.column_config.TextColumn("bytes", help="The token's bytes (hex), as the server sent them."),
                "probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0,
                                                               format="percent"),
                "logprob": st.column_config.NumberColumn("logprob", format="%.3f"),
                "entropy": st.column_config.NumberColumn("entropy (bits)", format="%.2f",
                                                         help="Entropy of the top-k alternatives, renormalised."),
                "alternatives": st.column_config.TextColumn("alternatives", width="large"),
            },
        )
    return chosen
