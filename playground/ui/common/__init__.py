"""What several pages draw: a run (run_view), a live stream (live_view), and setting widget values from code (widget_sync)."""
