"""Optional protection of the monitoring routes: a bearer token or HTTP basic auth.

Credentials come from the config or from environment variables (``*_env`` keys); they are
compared with :func:`hmac.compare_digest`, and never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from _aiohttp_booster.redact import shown, type_name

from ._params import encodable, from_env

__all__ = ["AuthConfig", "load_auth"]

REALM = "monitoring"
AUTH_KEYS = (
    "bearer_token", "bearer_token_env", "username", "username_env", "password", "password_env",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthConfig:
    """Who may read the monitoring routes: a bearer token, or a user name and password."""

    bearer_token: bytes | None = field(default=None, repr=False)
    username: bytes | None = field(default=None, repr=False)
    password: bytes | None = field(default=None, repr=False)

    @property
    def scheme(self) -> str:
        """``Bearer`` or ``Basic``."""
        return "Bearer" if self.bearer_token is not None else "Basic"

    def allows(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header value carries the configured credentials."""
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != self.scheme.lower():
            return False
        credentials = credentials.strip()
        if self.bearer_token is not None:
            # a header aiohttp could not decode holds surrogates: compared, never matching
            return hmac.compare_digest(credentials.encode("utf-8", "surrogatepass"),
                                       self.bearer_token)  # fmt: skip
        try:
            user, sep, password = base64.b64decode(credentials, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        assert self.username is not None
        assert self.password is not None
        # both compared whatever the first says, so that timing tells nothing about either
        user_ok = hmac.compare_digest(user, self.username)
        password_ok = hmac.compare_digest(password, self.password)
        return bool(sep) and user_ok and password_ok

    def protect(self, handler: Handler) -> Handler:
        """``handler``, answering 401 to requests without the right credentials."""
        challenge = f'{self.scheme} realm="{REALM}"' + (
            ', charset="UTF-8"' if self.scheme == "Basic" else ""
        )

        async def protected(request: web.Request) -> web.StreamResponse:
            if self.allows(request.headers.get(hdrs.AUTHORIZATION, "")):
                return await handler(request)
            return web.Response(
                status=401, text="401: Unauthorized", headers={hdrs.WWW_AUTHENTICATE: challenge}
            )

        return protected


def _value(raw: Mapping[str, Any], key: str, problems: list[str]) -> bytes | None:
    """``raw[key]``, or the environment variable ``raw[key + '_env']`` names, as bytes."""
    value, env = raw.get(key), raw.get(f"{key}_env")
    if value is not None and env is not None:
        problems.append(f"auth: give either {key!r} or '{key}_env', not both")
        return None
    if env is not None:
        value, problem = from_env(key, env)
        if problem is not None:
            problems.append(f"auth: {problem}")
            return None
    if value is None:
        return None
    if isinstance(value, str) and value and encodable(value):
        return value.encode()
    # the value is never shown: its type, or what is wrong with the string
    what = type_name(value)
    if isinstance(value, str):
        what = "an empty string" if not value else "a string UTF-8 cannot encode"
    problems.append(f"auth: {key}: expected a non-empty string, got {what}")
    return None


def load_auth(raw: Any) -> tuple[AuthConfig | None, list[str]]:
    """The ``auth`` key of MONITORING (None: no protection), or the problems it has."""
    if raw is None:
        return None, []
    if not isinstance(raw, Mapping):
        return None, [f"auth: expected a dict, got {type_name(raw)}"]
    problems = [f"auth: unknown key {shown(key)}" for key in raw if key not in AUTH_KEYS]
    token = _value(raw, "bearer_token", problems)
    username = _value(raw, "username", problems)
    password = _value(raw, "password", problems)
    if token is not None and (username is not None or password is not None):
        problems.append("auth: give either a bearer token or a username and password, not both")
    elif token is None and (username is None or password is None) and not problems:
        problems.append(
            "auth: expected 'bearer_token' (or 'bearer_token_env'), or both 'username' and "
            "'password' (or their '_env' variants)"
        )
    if problems:
        return None, problems
    return AuthConfig(bearer_token=token, username=username, password=password), []
