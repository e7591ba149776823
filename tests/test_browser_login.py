"""Browser: the real sign-in round trip of issue 25 ("who ran what"), in headless Chromium against
`streamlit run app.py` with an [auth] section, and no network: the identity provider is
tests/oidc_provider.py on loopback (discovery, authorize, token with an RS256 id token, JWKS,
end-session), and Streamlit's own /auth/login and /oauth2callback routes (Authlib, the `team`
extra) do the rest, as they would against Google or Okta.

One test walks what a teammate does: opens the app signed out (Log in), signs in as Ada
Lovelace through the provider and back (her name and Log out in the sidebar, the sign-in
surviving a page load), runs a prompt on the Local sandbox (the scripted `server`), finds the run
in History under "Mine" (recorded with her name and email; a teammate's run is only under
"Everyone"), logs out through the provider, and runs again: that run carries no user. Neither
the app's secrets nor anything the provider issued nor the browser's auth cookies reach the
history database.

tests/test_store_users.py covers the same bookkeeping with AppTest's stand-in `user`; this file
proves that a real OIDC sign-in fills st.user the way playground/ui/common/user.py reads it.
"""

from __future__ import annotations

import secrets
import sqlite3
from contextlib import closing

import pytest

from playground.db.user import User
from playground.runs.store import RunStore
from tests.browser_support import (
    USER_BOX,
    dataframe_text,
    open_page,
    run_prompt,
    screenshot,
    streamlit_app,
    wait_answer,
    wait_idle,
)
from tests.oidc_provider import ADA, OIDCProvider
from tests.scripted_server import Reply
from tests.support import run_of, wait_for

pytestmark = pytest.mark.browser

COOKIE_SECRET = "cookie-" + secrets.token_hex(16)
GRACE = User(name="Grace Hopper", email="grace@example.com")
SIGNED_IN_ANSWER = ["Notes", " by", " Ada"]
SIGNED_OUT_ANSWER = ["Nobody", " signed", " in"]


@pytest.fixture(scope="module")
def provider():
    """The identity provider. Without Authlib (Streamlit's login needs it) the test skips here, and
    fails under CI=true (tests/conftest.py turns a skip into a failure there)."""
    try:
        import authlib  # noqa: F401
    except ImportError as error:
        pytest.skip(f"Streamlit's login needs Authlib ({error}): pip install -e '.[team]'")
    with OIDCProvider(client_id="playground-test") as idp:
        yield idp


@pytest.fixture(scope="module")
def store(app_dir):
    """The app's history, holding a teammate's run before the app starts: "Mine" must leave it out."""
    runs = RunStore(app_dir / "data" / "runs.sqlite3")
    runs.save(run_of("Grace's compiler answer", prompt="Who wrote A-0?"), source="playground", user=GRACE)
    return runs


@pytest.fixture(scope="module")
def app_url(server, app_dir, provider, store):
    """The app with login configured: an [auth] table (one provider, Streamlit's "default") in a
    secrets file. Streamlit fills {port} in redirect_uri with the port it serves on."""
    secrets_file = app_dir / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{COOKIE_SECRET}"\n'
        f'client_id = "{provider.client_id}"\n'
        f'client_secret = "{provider.client_secret}"\n'
        f'server_metadata_url = "{provider.metadata_url}"\n')
    with streamlit_app(app_dir, server, env={"STREAMLIT_SECRETS_FILES": str(secrets_file)}) as base:
        yield base


def sidebar_button(page, name: str):
    return page.get_by_test_id("stSidebar").get_by_role("button", name=name, exact=True)


def run_and_wait(page, server, store: RunStore, tokens: list[str], prompt: str):
    """Run `prompt` on the Playground; the run's summary once the history has it."""
    server.add(Reply.stream_text(tokens))
    run_prompt(page, prompt)
    text = "".join(tokens)
    wait_answer(page, f"a[0].includes({text!r})", shot="login-answer-failure.png")
    found = []
    wait_for(lambda: found.extend(r for r in store.list(limit=10) if r.text_preview == text) or found, 15,
             f"the run answering {text!r} in the history")
    wait_idle(page)
    return found[0]


def history_caption(page) -> str:
    return page.get_by_text("Runs 1-").first.inner_text()


def database_text(app_dir) -> str:
    """Every row of every table of the history database, as SQL text (the WAL's rows included)."""
    with closing(sqlite3.connect(app_dir / "data" / "runs.sqlite3")) as db:
        return "\n".join(db.iterdump())


def test_sign_in_through_the_provider_records_who_ran_what(browser, app_url, app_dir, server, provider, store):
    from playwright.sync_api import expect

    with open_page(browser, app_url, "Playground") as page:
        page.locator(USER_BOX).first.wait_for()
        # signed out: the sidebar offers Log in, nobody is named
        sidebar_button(page, "Log in").wait_for()
        assert sidebar_button(page, "Log out").count() == 0
        screenshot(page, "login-1-signed-out.png")

        # Log in: the app's /auth/login -> the provider's /authorize -> the app's /oauth2callback -> the app
        sidebar_button(page, "Log in").click()
        sidebar_button(page, "Log out").wait_for()
        page.get_by_test_id("stSidebar").get_by_text("Ada Lovelace").wait_for()
        page.locator(USER_BOX).first.wait_for()
        wait_idle(page)
        screenshot(page, "login-2-signed-in.png")
        (authorize,) = provider.calls("/authorize")
        assert authorize.query["redirect_uri"] == app_url + "/oauth2callback"
        assert authorize.query["code_challenge_method"] == "S256"  # Streamlit asks for PKCE
        assert authorize.query["nonce"] and authorize.query["state"]
        (token,) = provider.calls("/token")
        assert token.status == 200  # code, client secret, redirect_uri and PKCE verifier all checked
        assert provider.calls("/jwks")  # the id token's signature was verified against the provider's key
        assert provider.id_tokens[0]["nonce"] == authorize.query["nonce"]
        auth_cookies = {c["name"]: c["value"] for c in page.context.cookies() if c["name"].startswith("_streamlit")}
        assert "_streamlit_user" in auth_cookies, auth_cookies

        # a run made signed in carries her name and email
        mine = run_and_wait(page, server, store, SIGNED_IN_ANSWER, "Who wrote the first program?")
        assert (mine.user_name, mine.user_email) == (ADA["name"], ADA["email"])

        # History (a new page load: the sign-in is in the cookie): Everyone lists both runs, Mine hers only
        page.goto(app_url + "/history")
        page.get_by_role("heading", name="History", exact=True).wait_for()
        whose = page.get_by_role("radiogroup", name="Runs of")
        whose.wait_for()
        wait_idle(page)
        expect(whose.get_by_role("radio", name="Everyone", exact=True)).to_be_checked()  # the default
        assert history_caption(page).startswith("Runs 1-2 of 2")
        whose.get_by_role("radio", name="Mine", exact=True).click()
        page.get_by_text("Runs 1-1 of 1").wait_for()
        wait_idle(page)
        expect(whose.get_by_role("radio", name="Mine", exact=True)).to_be_checked()
        table = dataframe_text(page.get_by_test_id("stDataFrame").first)
        assert "Notes by Ada" in table and "Grace" not in table, table
        assert page.get_by_test_id("stSidebar").get_by_text("Ada Lovelace").is_visible()
        screenshot(page, "login-3-history-mine.png", full_page=True)

        # Log out: the app's /auth/logout -> the provider's end-session -> the app, signed out
        sidebar_button(page, "Log out").click()
        sidebar_button(page, "Log in").wait_for()
        page.locator(USER_BOX).first.wait_for()
        wait_idle(page)
        screenshot(page, "login-4-signed-out-again.png")
        (logout,) = provider.calls("/logout")
        assert logout.query["client_id"] == provider.client_id
        assert logout.query["id_token_hint"] in provider.issued
        assert not [c for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]
        assert page.get_by_test_id("stSidebar").get_by_text("Ada Lovelace").count() == 0

        # a run made signed out carries no user
        anonymous = run_and_wait(page, server, store, SIGNED_OUT_ANSWER, "Who is there?")
        assert (anonymous.user_name, anonymous.user_email) == (None, None)
        assert store.count(user_email=ADA["email"]) == 1

        # signed out, History offers no "Runs of"
        page.goto(app_url + "/history")
        page.get_by_text("Runs 1-3 of 3").wait_for()
        wait_idle(page)
        assert page.get_by_role("radiogroup", name="Runs of").count() == 0

    # nothing of the sign-in reached the history (nor the app's log): no secret, code, token or cookie
    dumped = database_text(app_dir)
    leaks = {"cookie_secret": COOKIE_SECRET, "client_secret": provider.client_secret,
             **{f"issued[{i}]": value for i, value in enumerate(provider.issued)},
             **{f"cookie {name}": value for name, value in auth_cookies.items()}}
    assert len(provider.issued) == 3  # one code, one access token, one id token
    assert not [what for what, value in leaks.items() if value in dumped]
    log = (app_dir / "streamlit.log").read_text(errors="replace")
    assert not [what for what, value in leaks.items() if value in log]
    assert "_streamlit_user" not in dumped and ADA["sub"] not in dumped
    assert dumped.count(ADA["email"]) == 1  # the one run made signed in
