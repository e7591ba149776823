"""The Playground page. state.py owns its session keys (the working request, the run in flight,
the last run); page.render() draws it."""
