"""The Experiments page: one preset over a table of cases and 1 to 4 variants (state.py
remembers, page.py draws, views.py builds the tables it shows)."""
