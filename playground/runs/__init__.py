"""Runs: the store of past runs (store) and the runner every page uses (batch). Uses the client, never the reverse."""
