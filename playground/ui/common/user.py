"""Who is using the app, when Streamlit's login is configured ([auth] in .streamlit/secrets.toml,
an OIDC provider; the `streamlit[auth]` extra): st.user, read here only. Runs, experiment runs
and presets record that user; History offers "Mine" beside "Everyone". Without login, there
is no user (None) and everything is as before.

The sign-in box sits in the sidebar: Log in (st.login) when signed out, the name and Log out
(st.logout) when signed in. Nothing forces a login: the team's proxy or provider decides who
reaches the app; the app records who did what once someone signed in.
"""

from __future__ import annotations

import streamlit as st

from playground.db.user import User
from playground.textsafe import escape_markdown


def login_configured() -> bool:
    """True when the app has an [auth] section: st.user then carries `is_logged_in`."""
    try:
        return "is_logged_in" in st.user
    except Exception:  # noqa: BLE001 - no script context (a library call in a thread): no login
        return False


def current_user() -> User | None:
    """The signed-in user, or None (no login configured, or nobody signed in). Streamlit's own
    test harness and a server without [auth] may fill st.user with an email but never with
    is_logged_in: only a real sign-in counts."""
    try:
        if st.user.get("is_logged_in") is not True:
            return None
        name, email = st.user.get("name"), st.user.get("email")
    except Exception:  # noqa: BLE001 - as above
        return None
    if not name and not email:
        return None
    return User(name=str(name) if name else None, email=str(email) if email else None)


def runs_owner() -> User | None:
    """The signed-in user whose runs "Mine" lists, or None. Runs are told apart by email, so a
    sign-in whose provider sent no email has no "Mine" (it would list everyone's runs)."""
    me = current_user()
    return me if me is not None and me.email else None


def account_box() -> None:
    """The sidebar's sign-in line (drawn only when login is configured)."""
    if not login_configured():
        return
    user = current_user()
    if user is None:
        st.button("Log in", key="account.login", on_click=st.login, icon=":material/login:",
                  help="Sign in, so that your runs and presets carry your name and History can show yours. "
                       "Signing in (and out) reloads the app on the Playground, without a message not yet run.")
        return
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.caption(f":material/person: {escape_markdown(user.label)}")
    right.button("Log out", key="account.logout", on_click=st.logout)

