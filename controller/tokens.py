"""API tokens as the station file keeps them: salted scrypt hashes, never the tokens themselves.

A station file that leaks (a backup, a repository, a support ticket) must not hand out API access, so
`[api.tokens]` holds one entry per token, a name with a role and a hash:

    [api.tokens]
    ops-3f9c2a = { role = "operator", hash = "$scrypt$ln=14,r=8,p=1$<salt>$<digest>" }

`lastmile token create` makes a token `<name>.<secret>` (32 random bytes of secret) and stores only that
entry; the token is shown once. The name in front lets the API find the one entry to check, so a request
costs at most one scrypt and a made-up token with an unknown name costs none. Tokens from the plaintext days,
converted in place by `lastmile token convert` so that clients keep working, have no name in front: their
entries say `legacy = true` and an unnamed token is checked against each of them.

The hash is scrypt (`hashlib.scrypt`, in the standard library; RFC 7914) with a 16-byte random salt per
entry, written in the PHC string format (`$scrypt$ln=..,r=..,p=..$salt$digest`, base64 without padding) so
its cost travels with it. Tokens are random, not chosen by people, so the cost is not what protects them
against guessing (2^256 secrets); it is there so that a leaked file is not a fast oracle either. The default,
ln=14 (N = 16384, 16 MiB), costs tens of milliseconds: `verify` remembers each outcome (keyed by an HMAC of
the token under a per-process key, not the token), so a client pays it once per process, not per request.
Digests are compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_COST",
    "NAME_PATTERN",
    "Role",
    "TokenEntry",
    "hash_token",
    "hash_tokens",
    "identify",
    "new_token",
    "plaintext_problem",
    "toml_entry",
    "toml_inline",
]

Role = Literal["dispatcher", "operator", "viewer", "vehicle"]
ROLES: tuple[Role, ...] = ("dispatcher", "operator", "viewer", "vehicle")
DEFAULT_COST = 14  # log2 of scrypt's N
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
_PHC = re.compile(r"^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$")
_CACHE_MAX = 4096
_cache: dict[tuple[str, bytes], bool] = {}  # (stored hash, HMAC of the token) -> matched
_process_key = secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(token: str, salt: bytes, ln: int, r: int, p: int) -> bytes:
    n = 1 << ln
    # scrypt needs about 128 * N * r bytes; the limit is set from that, with room, so no cost fails by default
    return hashlib.scrypt(token.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * n * r + (1 << 20))


def hash_token(token: str, *, cost: int = DEFAULT_COST) -> str:
    """The PHC string of `token` under a fresh random salt (what `[api.tokens]` stores)."""
    if not 1 <= cost <= 20:
        raise ValueError(f"cost={cost}: log2 of scrypt's N must be 1..20")
    salt = secrets.token_bytes(16)
    return f"$scrypt$ln={cost},r=8,p=1${_b64(salt)}${_b64(_scrypt(token, salt, cost, 8, 1))}"


class TokenEntry(BaseModel):
    """One token of `[api.tokens]`: its role and the salted hash of the token (never the token)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    hash: str = Field(description="$scrypt$ln=..,r=..,p=..$salt$digest (PHC string), from `lastmile token`")
    legacy: bool = Field(
        default=False,
        description="converted from a plaintext token: the token does not start with '<name>.'",
    )

    @field_validator("hash")
    @classmethod
    def _phc(cls, value: str) -> str:
        match = _PHC.match(value)
        if match is None:
            raise ValueError(
                "not a token hash ($scrypt$ln=..,r=..,p=..$salt$digest): "
                "make one with `lastmile token create`"
            )
        ln, r, p = (int(g) for g in match.groups()[:3])
        if not (1 <= ln <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError(
                f"scrypt parameters ln={ln}, r={r}, p={p} out of range (ln 1..20, r 1..32, p 1..16)"
            )
        return value

    def matches(self, token: str) -> bool:
        """Whether `token` hashes to this entry (the outcome is remembered for this process)."""
        key = (self.hash, hmac.new(_process_key, token.encode(), hashlib.sha256).digest())
        known = _cache.get(key)
        if known is not None:
            return known
        match = _PHC.match(self.hash)
        assert match is not None  # validated
        ln, r, p = (int(g) for g in match.groups()[:3])
        digest = _scrypt(token, _unb64(match.group(4)), ln, r, p)
        found = hmac.compare_digest(digest, _unb64(match.group(5)))
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()  # a crude bound: a flood of made-up tokens must not grow memory
        _cache[key] = found
        return found


def identify(token: str | None, entries: Mapping[str, TokenEntry]) -> tuple[str, TokenEntry] | None:
    """The (name, entry) `token` belongs to, or None.

    `<name>.<secret>` is checked against that name's entry only; anything else against the legacy entries.
    Every candidate is checked (no early exit), so the time taken does not say which one matched.
    """
    if not token:
        return None
    name, dot, _ = token.partition(".")
    entry = entries.get(name) if dot else None
    if entry is not None and not entry.legacy:
        candidates: Iterable[tuple[str, TokenEntry]] = [(name, entry)]
    else:
        candidates = [(n, e) for n, e in entries.items() if e.legacy]
    found = None
    for candidate in candidates:
        if candidate[1].matches(token):
            found = candidate
    return found


def new_token(
    role: Role, name: str | None = None, *, cost: int = DEFAULT_COST
) -> tuple[str, str, TokenEntry]:
    """(token, name, entry): a new random token for `role`, named `name` (default `<role>-<6 hex>`)."""
    name = name or f"{role}-{secrets.token_hex(3)}"
    if not NAME_PATTERN.match(name):
        raise ValueError(f"name={name!r}: 1-48 letters, digits, '-' or '_'")
    token = f"{name}.{secrets.token_urlsafe(32)}"
    return token, name, TokenEntry(role=role, hash=hash_token(token, cost=cost))


def hash_tokens(plain: Mapping[str, Role], *, cost: int = DEFAULT_COST) -> dict[str, TokenEntry]:
    """Legacy entries for tokens held in memory (`--token` of the standalone server, tests): same checks."""
    return {
        f"{role}-{i}": TokenEntry(role=role, hash=hash_token(token, cost=cost), legacy=True)
        for i, (token, role) in enumerate(plain.items(), start=1)
    }


def toml_entry(name: str, entry: TokenEntry) -> str:
    """The line of `[api.tokens]` that stores `entry`."""
    legacy = ", legacy = true" if entry.legacy else ""
    return f'{name} = {{ role = "{entry.role}", hash = "{entry.hash}"{legacy} }}'


def toml_inline(entries: Mapping[str, TokenEntry]) -> str:
    """`entries` as one TOML inline table, for `tokens = ...` under `[api]` (generated station files)."""
    return "{ " + ", ".join(toml_entry(name, entry) for name, entry in entries.items()) + " }"


def plaintext_problem(tokens: object, station: str = "STATION.toml") -> str | None:
    """Why `[api.tokens]` cannot be loaded when it holds plaintext tokens (`token = "role"`), else None.

    The message names what to run and shows no more than the first four characters of a token.
    """
    if not isinstance(tokens, Mapping):
        return None
    plain = [str(k) for k, v in tokens.items() if isinstance(v, str)]
    if not plain:
        return None
    shown = ", ".join(f"'{t[:4]}…'" for t in plain[:3]) + (", …" if len(plain) > 3 else "")
    count = "a plaintext token" if len(plain) == 1 else f"{len(plain)} plaintext tokens"
    return (
        f"holds {count} ({shown}); tokens are stored as salted hashes: run "
        f"`lastmile token convert --station {station}` to replace them with their hashes (they keep working)"
    )
