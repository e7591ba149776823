"""Compare: 2 to 4 runs side by side (text, usage, latency, logprob tables, token diff) and Repeat."""

from playground.ui.compare_widgets import compare_page

compare_page()
