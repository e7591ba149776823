"""A scripted OpenID Connect provider on a real loopback socket: a test IdP that signs in one
fixed user, for the sign-in round trip through Streamlit's st.login (Authlib) without a network.

    with OIDCProvider(client_id="playground", client_secret="s3cret") as idp:
        idp.metadata_url      # [auth] server_metadata_url
        ...                   # the browser clicks Log in: /authorize -> the app's /oauth2callback
        idp.requests          # what the provider was asked, in order (path, query, form, headers)
        idp.issued            # every code, access token and id token it handed out

Endpoints (all GET unless said):
- `/.well-known/openid-configuration`: the discovery document (issuer = base_url; S256 PKCE,
  RS256 id tokens, client_secret_basic and client_secret_post).
- `/authorize`: no login form: the one user is signed in at once, a 302 back to redirect_uri with
  a fresh code and the same state. The code remembers the nonce, redirect_uri and PKCE challenge.
  A wrong client_id, response_type or a redirect_uri off loopback is refused (400), not redirected.
- `/token` (POST, form): the code (once only), the client's credentials, the same redirect_uri and
  the PKCE verifier are checked; the answer is an access token and an RS256-signed id token
  (iss, aud = client_id, sub, name, email, nonce, iat, exp) signed with a key made per provider.
- `/jwks`: that key's public half. `/userinfo`: the user's claims for a Bearer access token.
- `/logout` (end_session_endpoint): recorded, then a 302 to post_logout_redirect_uri.

Signing uses `cryptography` (Authlib, Streamlit's `auth` extra, depends on it), imported when a
provider is made: this module imports without it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = ["ADA", "OIDCProvider", "ProviderRequest"]

ADA = {"sub": "ada-0001", "name": "Ada Lovelace", "email": "ada@example.com", "email_verified": True}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TOKEN_LIFETIME_S = 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class ProviderRequest:
    """One request the provider answered."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    status: int = 0


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    used: bool = False


@dataclass
class OIDCProvider:
    """The provider; a context manager (started on enter, stopped on exit)."""

    client_id: str = "playground-test"
    client_secret: str = field(default_factory=lambda: "idp-secret-" + secrets.token_hex(8))
    user: dict = field(default_factory=lambda: dict(ADA))

    def __post_init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-" + secrets.token_hex(4)
        self.requests: list[ProviderRequest] = []
        self.issued: list[str] = []  # codes, access tokens, id tokens: what must never be stored elsewhere
        self.id_tokens: list[dict] = []  # the claims of each id token issued
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "OIDCProvider":
        provider = self

        class Handler(_Handler):
            idp = provider

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "OIDCProvider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- what a test reads ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        return self.base_url + "/.well-known/openid-configuration"

    def calls(self, path: str) -> list[ProviderRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def metadata(self) -> dict:
        base = self.base_url
        return {
            "issuer": base,
            "authorization_endpoint": base + "/authorize",
            "token_endpoint": base + "/token",
            "userinfo_endpoint": base + "/userinfo",
            "jwks_uri": base + "/jwks",
            "end_session_endpoint": base + "/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "name", "email", "email_verified", "nonce", "iss", "aud", "iat", "exp"],
        }

    def jwks(self) -> dict:
        numbers = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": _int_b64url(numbers.n), "e": _int_b64url(numbers.e)}]}

    def sign(self, claims: dict) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)

    # --- the protocol ------------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], dict | None]:
        """(status, headers, error body): a 302 to the redirect_uri, or a 400 that redirects nowhere."""
        redirect_uri = query.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        if query.get("client_id") != self.client_id:
            return 400, {}, {"error": "invalid_client"}
        if target.scheme != "http" or target.hostname not in LOOPBACK:
            return 400, {}, {"error": "invalid_request", "error_description": "redirect_uri off loopback"}
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            return 400, {}, {"error": "unsupported_response_type"}
        code = "code-" + secrets.token_urlsafe(16)
        with self._lock:
            self._grants[code] = _Grant(self.client_id, redirect_uri, query.get("nonce"), query.get("scope", ""),
                                        query.get("code_challenge"), query.get("code_challenge_method"))
            self.issued.append(code)
        back = {"code": code}
        if "state" in query:
            back["state"] = query["state"]
        joiner = "&" if target.query else "?"
        return 302, {"Location": redirect_uri + joiner + urlencode(back)}, None

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization.split(None, 1)[1]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._grants.get(form.get("code", ""))
            if grant is None or grant.used:
                return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
            grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            expected = b64url(hashlib.sha256(verifier.encode("ascii")).digest()) \
                if grant.code_challenge_method == "S256" else verifier
            if expected != grant.code_challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"}
        now = int(time.time())
        claims = {"iss": self.base_url, "aud": self.client_id, "iat": now, "exp": now + TOKEN_LIFETIME_S,
                  **{k: v for k, v in self.user.items() if v is not None}}  # a claim set to None is left out
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        access_token = "at-" + secrets.token_urlsafe(24)
        id_token = self.sign(claims)
        with self._lock:
            self._access[access_token] = {k: v for k, v in self.user.items() if v is not None}
            self.issued += [access_token, id_token]
            self.id_tokens.append(claims)
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S,
                     "scope": grant.scope, "id_token": id_token}

    def userinfo(self, authorization: str | None) -> tuple[int, dict]:
        token = (authorization or "").partition(" ")[2]
        with self._lock:
            user = self._access.get(token)
        return (200, user) if user is not None else (401, {"error": "invalid_token"})


class _Handler(BaseHTTPRequestHandler):
    idp: OIDCProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._serve("GET", {})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self._serve("POST", {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()})

    def _serve(self, method: str, form: dict[str, str]) -> None:
        idp = self.idp
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        authorization = self.headers.get("Authorization")
        headers: dict[str, str] = {}
        body: dict | None
        path = parts.path
        if path == "/.well-known/openid-configuration" and method == "GET":
            status, body = 200, idp.metadata()
        elif path == "/jwks" and method == "GET":
            status, body = 200, idp.jwks()
        elif path == "/authorize" and method == "GET":
            status, headers, body = idp.authorize(query)
        elif path == "/token" and method == "POST":
            status, body = idp.token(form, authorization)
        elif path == "/userinfo":
            status, body = idp.userinfo(authorization)
        elif path == "/logout" and method == "GET":
            back = query.get("post_logout_redirect_uri")
            if back and urlsplit(back).hostname in LOOPBACK:
                status, headers, body = 302, {"Location": back}, None
            else:
                status, body = 200, {"signed_out": True}
        else:
            status, body = 404, {"error": "not_found"}
        with idp._lock:
            idp.requests.append(ProviderRequest(method, path, query, form, dict(self.headers.items()), status))
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
