"""Analysis of runs: logprob tables and token alignment (logprobs), repeat summaries (repeat),
Compare's tables (compare_tables)."""
