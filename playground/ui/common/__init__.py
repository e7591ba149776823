"""What several pages draw: a run (run_view), a live stream (live_view, with the live channel
that carries its text: live_channel and live_text.js), and widget values set from code
(widget_sync)."""
