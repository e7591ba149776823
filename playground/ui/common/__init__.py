"""What several pages draw: a run (run_view), a live stream (live_view), and widget values set
from code (widget_sync)."""
