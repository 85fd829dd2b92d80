"""`lastmile token`: make, convert, list and revoke the API tokens of a station file.

    lastmile token create --role operator --station station.toml    # prints the token once, stores its hash
    lastmile token create --role dispatcher                         # prints the token and the line to add
    lastmile token convert --station station.toml                   # plaintext tokens -> their hashes
    lastmile token list --station station.toml
    lastmile token revoke operator-3f9c2a --station station.toml

The station file keeps only salted hashes (`controller.tokens`), so the token is shown once, when it is made,
and nowhere else: copy it into the client then. With `--station` the entry is written into the file's
`[api.tokens]` table (what people expect from a tool that manages a config file: no hand editing, no
half-pasted line); without it the command prints the TOML line, for files that are generated or kept in a
secret store. `lastmile serve` reads the file at start: restart it to apply a change.

Writing the file: the `[api.tokens]` table (or an inline `tokens = {...}` under `[api]`) is taken out and
written again whole at the end of the file, then the result is parsed and compared with what was meant
before it replaces the file (atomically, keeping its mode). Comments elsewhere are untouched; comment lines
inside the old table stay where they were. A file the rewrite cannot handle (tokens as dotted keys, say) is
left alone and the lines to paste are printed instead.

First start: a station file with no tokens at all gets two from `lastmile serve` (an operator's and a
dispatcher's, `first_start_tokens`), printed once. Their hashes go into a tokens file beside the station file
(`station.tokens.toml` for `station.toml`, mode 0600, the same `[api.tokens]` table), not into the station
file: that file is the operator's (often kept in a repository, or read-only), and tokens are the
deployment's. `serve` reads both; `list` and `revoke` here see both too.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from controller.tokens import TokenEntry

__all__ = [
    "app",
    "convert",
    "create",
    "first_start_tokens",
    "list_tokens",
    "register",
    "revoke",
    "rewrite_tokens",
    "tokens_file_for",
]

app = typer.Typer(help="API tokens: stored as salted hashes in the station file.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # paths and commands stay whole


def _say(message: str, style: str | None = None) -> None:
    """One line to stderr, as written (no rich markup: `[api.tokens]` is not a style; no wrapping: a path
    cut in two cannot be copied)."""
    err_console.print(message, markup=False, style=style, soft_wrap=True)


_TABLE_HEADER = re.compile(r"^\s*\[\s*api\s*\.\s*tokens\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_API_HEADER = re.compile(r"^\s*\[\s*api\s*\]\s*(#.*)?$")
_INLINE_TOKENS = re.compile(r"^\s*tokens\s*=")

StationOption = Annotated[
    Path | None, typer.Option("--station", "-s", help="station TOML whose [api.tokens] to change")
]


class RewriteError(ValueError):
    """The station file's tokens could not be rewritten safely; nothing was written."""


def _read(station: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = station.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"{station}: {exc.strerror or exc}", param_hint="--station") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise typer.BadParameter(f"{station} is not valid TOML: {exc}", param_hint="--station") from None


def rewrite_tokens(text: str, entries: dict[str, TokenEntry]) -> str:
    """`text` with its API tokens replaced by `entries`, as an `[api.tokens]` table at the end.

    Raises `RewriteError` when the result would not parse to exactly `entries` (the caller then writes
    nothing).
    """
    from controller.tokens import toml_entry

    lines = text.splitlines()
    out: list[str] = []
    section = ""  # the table the current line belongs to
    for line in lines:
        if _TABLE_HEADER.match(line):
            section = "api.tokens"
            continue  # the header goes; the table is written again below
        if _ANY_HEADER.match(line):
            section = "api" if _API_HEADER.match(line) else "other"
        elif section == "api.tokens" and line.strip() and not line.lstrip().startswith("#"):
            continue  # an entry of the old table
        elif section == "api" and _INLINE_TOKENS.match(line):
            continue  # `tokens = { ... }` (one line in TOML 1.0)
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    table = [
        "",
        "# API tokens: salted hashes only (`lastmile token create`, docs/security.md).",
        "[api.tokens]",
    ]
    table += [toml_entry(name, entry) for name, entry in entries.items()]
    result = "\n".join(out + table) + "\n"
    try:
        parsed = tomllib.loads(result).get("api", {}).get("tokens", {})
    except tomllib.TOMLDecodeError as exc:
        raise RewriteError(f"the rewritten file would not be valid TOML ({exc})") from None
    expected = {n: e.model_dump(exclude_defaults=True) for n, e in entries.items()}
    if parsed != expected:
        raise RewriteError("the file's tokens are written in a form this command does not rewrite")
    return result


def _current(raw: dict[str, Any]) -> tuple[dict[str, TokenEntry], dict[str, str]]:
    """(hashed entries, plaintext token -> role) of a parsed station file; BadParameter for bad entries."""
    from pydantic import ValidationError

    from controller.tokens import TokenEntry

    tokens = raw.get("api", {}).get("tokens", {})
    if not isinstance(tokens, dict):
        raise typer.BadParameter("api.tokens is not a table", param_hint="--station")
    hashed: dict[str, TokenEntry] = {}
    plain: dict[str, str] = {}
    for key, value in tokens.items():
        if isinstance(value, str):
            plain[key] = value
            continue
        try:
            hashed[key] = TokenEntry.model_validate(value)
        except ValidationError as exc:
            raise typer.BadParameter(
                f"api.tokens.{key}: {exc.errors()[0]['msg']}", param_hint="--station"
            ) from None
    return hashed, plain


def tokens_file_for(station: Path) -> Path:
    """Where `lastmile serve` keeps the tokens it made on its first start: beside the station file."""
    return station.with_name(f"{station.stem}.tokens.toml")


def _file_tokens(path: Path) -> dict[str, TokenEntry]:
    """The entries of a tokens file (none when it does not exist); BadParameter naming it when it is bad."""
    if not path.is_file():
        return {}
    _, raw = _read(path)
    hashed, plain = _current(raw)
    if plain:
        raise typer.BadParameter(f"{path} holds plaintext tokens: remove them", param_hint="--station")
    return hashed


def first_start_tokens(
    station: Path, configured: dict[str, TokenEntry], tokens_file: Path | None = None
) -> tuple[dict[str, TokenEntry], Path, dict[str, str]]:
    """(every token entry `serve` accepts, the tokens file, {role: token} made now: empty unless first start).

    The entries are the station file's `[api.tokens]` and the tokens file's. When both are empty this is the
    first start: an operator and a dispatcher token are made and their hashes written to the tokens file
    (mode 0600) before the tokens are returned, so a token that is shown is also one that works after a
    restart. `OSError` when the file cannot be written; BadParameter when an existing one is bad.
    """
    from controller.tokens import new_token

    path = tokens_file or tokens_file_for(station)
    found = _file_tokens(path)
    entries = {**found, **configured}
    if entries:
        return entries, path, {}
    made: dict[str, str] = {}
    for role in ("operator", "dispatcher"):
        token, name, entry = new_token(role)  # type: ignore[arg-type]
        entries[name] = entry
        made[role] = token
    header = (
        f"# API tokens `lastmile serve` made on its first start for {station.name} (salted hashes only).\n"
        "# `lastmile token list|revoke --station` of the station file see them; delete this file and\n"
        "# restart to get new ones.\n"
    )
    text = rewrite_tokens(header, entries)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)  # mkstemp made it 0600: the hashes are not secrets, but nobody else's business
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return entries, path, made


def _write(station: Path, text: str, entries: dict[str, TokenEntry], lines_if_not: list[str]) -> bool:
    """Replace the file's tokens with `entries` (atomically); on `RewriteError` print what to paste."""
    try:
        new = rewrite_tokens(text, entries)
    except RewriteError as exc:
        _say(f"{station} left unchanged: {exc}. Put these under [api.tokens]:", style="bold yellow")
        for line in lines_if_not:
            print(line)
        return False
    mode = station.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=station.parent, prefix=f".{station.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(new)
        os.chmod(tmp, mode)
        os.replace(tmp, station)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


@app.command()
def create(
    role: Annotated[str, typer.Option("--role", "-r", help="dispatcher, operator, viewer or vehicle")],
    station: StationOption = None,
    name: Annotated[
        str | None, typer.Option(help="the entry's name (default <role>-<6 hex>); it starts the token")
    ] = None,
) -> None:
    """Make a new API token: print it once, store only its salted hash."""
    from controller.tokens import ROLES, new_token, toml_entry

    if role not in ROLES:
        raise typer.BadParameter(f"{role!r}: the role must be one of {', '.join(ROLES)}", param_hint="--role")
    text, raw = _read(station) if station is not None else ("", {})
    hashed, plain = _current(raw)
    if name is not None and (name in hashed or name in plain):
        raise typer.BadParameter(
            f"{name!r}: the station file already has a token of that name", param_hint="--name"
        )
    try:
        token, name, entry = new_token(role, name)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None
    line = toml_entry(name, entry)
    if station is not None and plain:
        raise typer.BadParameter(
            f"{station} still holds plaintext tokens: run `lastmile token convert --station {station}` first",
            param_hint="--station",
        )
    if station is not None and _write(station, text, {**hashed, name: entry}, [line]):
        _say(f"stored the hash of token '{name}' ({role}) in {station}; restart `lastmile serve`")
    elif station is None:
        _say("add this line under [api.tokens] in the station file:")
        print(line)
    _say("the token (shown this once; only its hash is kept):")
    print(token)


@app.command()
def convert(
    station: Annotated[Path, typer.Option("--station", "-s", help="station TOML to convert")],
) -> None:
    """Replace every plaintext token of the station file by its salted hash (the tokens keep working)."""
    from controller.tokens import TokenEntry, hash_token, toml_entry

    text, raw = _read(station)
    hashed, plain = _current(raw)
    if not plain:
        _say(f"{station} holds no plaintext token: nothing to do")
        return
    converted: dict[str, TokenEntry] = {}
    for i, (token, role) in enumerate(plain.items(), start=1):
        if role not in ("dispatcher", "operator", "viewer"):
            raise typer.BadParameter(f"api.tokens: '{token[:4]}…' has role {role!r}", param_hint="--station")
        name = f"{role}-legacy-{i}"
        while name in hashed or name in converted:
            name += "x"
        converted[name] = TokenEntry(role=role, hash=hash_token(token), legacy=True)  # type: ignore[arg-type]
    entries = {**hashed, **converted}
    if _write(station, text, entries, [toml_entry(n, e) for n, e in entries.items()]):
        _say(
            f"{station}: {len(converted)} plaintext token(s) replaced by their salted hashes "
            f"({', '.join(converted)}); they keep working. Rotate them with `lastmile token create` and "
            "`lastmile token revoke` when you can."
        )


@app.command("list")
def list_tokens(station: Annotated[Path, typer.Option("--station", "-s", help="station TOML")]) -> None:
    """The station file's tokens: names and roles (the tokens themselves are not in the file)."""
    _, raw = _read(station)
    hashed, plain = _current(raw)
    for name, entry in hashed.items():
        print(f"{name}\t{entry.role}{'  (converted from plaintext)' if entry.legacy else ''}")
    made = tokens_file_for(station)
    for name, entry in _file_tokens(made).items():
        print(f"{name}\t{entry.role}  (made by `lastmile serve`, in {made.name})")
    if plain:
        _say(f"{len(plain)} plaintext token(s): run `lastmile token convert --station {station}`")


@app.command()
def revoke(
    name: Annotated[str, typer.Argument(help="the token's name (see `lastmile token list`)")],
    station: Annotated[Path, typer.Option("--station", "-s", help="station TOML")],
) -> None:
    """Remove a token from the station file (restart `lastmile serve` to apply)."""
    text, raw = _read(station)
    hashed, plain = _current(raw)
    if plain:
        raise typer.BadParameter(
            f"{station} still holds plaintext tokens: run `lastmile token convert --station {station}` first",
            param_hint="--station",
        )
    made_file = tokens_file_for(station)
    made = _file_tokens(made_file)
    if name not in hashed and name in made:  # one `lastmile serve` made on its first start
        station, hashed = made_file, made
        text = made_file.read_text(encoding="utf-8")
    if name not in hashed:
        known = ", ".join([*hashed, *made]) or "none"
        raise typer.BadParameter(f"{name!r}: no token of that name (known: {known})", param_hint="NAME")
    entries = {n: e for n, e in hashed.items() if n != name}
    if _write(station, text, entries, []):
        _say(f"token '{name}' removed from {station}; restart `lastmile serve` to apply")


def register(main: typer.Typer) -> None:
    """Add `lastmile token ...` to the main app (one line in `controller.cli`)."""
    main.add_typer(app, name="token")
