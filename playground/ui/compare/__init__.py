"""The Compare page (panes, summary, token diff, Repeat). state.py owns its session keys; page.render() draws it."""
