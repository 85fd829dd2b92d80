"""API tokens stored as salted hashes: `lastmile token create/convert/list/revoke`, the refusal of plaintext
tokens at load, and the API accepting exactly the tokens whose hashes the station file holds (over HTTP)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from controller.api.server import ApiThread
from controller.cli import app
from controller.cli_token import RewriteError, rewrite_tokens
from controller.errors import InputError
from controller.station import ApiConfig, load_station
from controller.tokens import TokenEntry, hash_token, hash_tokens, identify, new_token

runner = CliRunner()
STATION_HEAD = 'name = "tokens"\nlat = 33.44\nlon = -112.256\n'


def station_file(tmp_path: Path, rest: str = "") -> Path:
    path = tmp_path / "station.toml"
    store = tmp_path / "s.sqlite3"
    path.write_text(f'{STATION_HEAD}store_url = "sqlite:///{store}"\n# keep this comment\n{rest}')
    return path


def create(station: Path | None, role: str, *extra: str) -> tuple[str, str]:
    """(token, stderr) of `lastmile token create`."""
    args = ["token", "create", "--role", role, *extra]
    if station is not None:
        args += ["--station", str(station)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1], result.stderr


def get(api: ApiThread, path: str, token: str) -> int:
    return httpx.get(api.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code


def test_create_prints_the_token_once_and_stores_only_its_salted_hash(tmp_path: Path) -> None:
    station = station_file(tmp_path, '[api]\nport = 0\n\n[[fleet]]\nid = "v1"\nkind = "van"\n')
    operator, said = create(station, "operator")
    viewer, _ = create(station, "viewer", "--name", "wall-screen")
    assert "shown this once" in said and str(station) in said
    text = station.read_text()
    assert operator not in text and viewer not in text  # neither the token nor its secret part
    assert operator.split(".", 1)[1] not in text
    assert "# keep this comment" in text and 'kind = "van"' in text  # the rest of the file is as it was
    entries = tomllib.loads(text)["api"]["tokens"]
    assert entries["wall-screen"]["role"] == "viewer" and viewer.startswith("wall-screen.")
    assert all(e["hash"].startswith("$scrypt$ln=14,r=8,p=1$") for e in entries.values())

    config = load_station(station)
    with ApiThread(config, f"sqlite:///{tmp_path / 'api.sqlite3'}") as api:
        assert get(api, "/v1/fleet", operator) == 200
        assert get(api, "/v1/fleet", viewer) == 200
        body = {"reason": "test"}
        posted = httpx.post(api.url + "/v1/fleet/ground", json=body, timeout=5,
                            headers={"Authorization": f"Bearer {viewer}"})  # fmt: skip
        assert posted.status_code == 403
        name, secret = operator.split(".", 1)
        assert get(api, "/v1/fleet", f"{name}.{secret[:-1]}x") == 401  # right name, wrong secret
        assert get(api, "/v1/fleet", "made-up.token") == 401
        assert get(api, "/v1/fleet", entries[name]["hash"]) == 401  # the stored hash is not a token


def test_create_without_a_station_prints_the_line_to_add(tmp_path: Path) -> None:
    result = runner.invoke(app, ["token", "create", "--role", "dispatcher"])
    assert result.exit_code == 0 and "under [api.tokens]" in result.stderr
    line, token = result.stdout.strip().splitlines()
    parsed = tomllib.loads(f"[api.tokens]\n{line}\n")["api"]["tokens"]
    name, entry = next(iter(parsed.items()))
    assert token.startswith(f"{name}.") and token not in line
    assert identify(token, {name: TokenEntry(**entry)}) is not None


def test_create_refuses_a_bad_role_or_name_naming_the_option(tmp_path: Path) -> None:
    bad_role = runner.invoke(app, ["token", "create", "--role", "admin"])
    assert bad_role.exit_code == 2 and "--role" in bad_role.stderr and "admin" in bad_role.stderr
    bad_name = runner.invoke(app, ["token", "create", "--role", "viewer", "--name", "a b"])
    assert bad_name.exit_code == 2 and "--name" in bad_name.stderr


def test_a_plaintext_token_in_the_station_file_is_refused_with_the_command_that_converts_it(
    tmp_path: Path,
) -> None:
    secret = "plain-text-token-1234"
    station = station_file(tmp_path, f'[api]\ntokens = {{ "{secret}" = "operator" }}\n')
    with pytest.raises(InputError) as refused:
        load_station(station)
    assert refused.value.field == "api.tokens"
    assert f"lastmile token convert --station {station}" in str(refused.value)
    assert secret not in str(refused.value)  # at most its first four characters: errors end up in logs
    # The same refusal for a table of them, and for a config built in code.
    station.write_text(station.read_text().replace(f'tokens = {{ "{secret}" = "operator" }}\n', "") +
                       f'[api.tokens]\n"{secret}" = "viewer"\n')  # fmt: skip
    with pytest.raises(InputError, match="plaintext token"):
        load_station(station)
    with pytest.raises(ValueError, match="lastmile token convert"):
        ApiConfig(tokens={secret: "operator"})  # type: ignore[dict-item]


def test_convert_replaces_plaintext_tokens_by_hashes_and_they_keep_working(tmp_path: Path) -> None:
    tokens = '[api.tokens]\n# ops laptop\n"op-old-1" = "operator"\n"view-old-2" = "viewer"\n'
    station = station_file(tmp_path, f"[api]\nport = 0\n\n{tokens}")
    result = runner.invoke(app, ["token", "convert", "--station", str(station)])
    assert result.exit_code == 0, result.output
    text = station.read_text()
    assert "op-old-1" not in text and "view-old-2" not in text and "# ops laptop" in text
    config = load_station(station)
    assert {e.role for e in config.api.tokens.values()} == {"operator", "viewer"}
    assert all(e.legacy for e in config.api.tokens.values())
    with ApiThread(config, f"sqlite:///{tmp_path / 'api.sqlite3'}") as api:
        assert get(api, "/v1/fleet", "op-old-1") == 200
        assert get(api, "/v1/fleet", "view-old-2") == 200
        assert get(api, "/v1/fleet", "op-old-2") == 401
    again = runner.invoke(app, ["token", "convert", "--station", str(station)])
    assert again.exit_code == 0 and "nothing to do" in again.stderr


def test_list_and_revoke(tmp_path: Path) -> None:
    station = station_file(tmp_path)
    create(station, "operator", "--name", "old-ops")
    create(station, "operator", "--name", "new-ops")
    listed = runner.invoke(app, ["token", "list", "--station", str(station)])
    assert listed.stdout.split() == ["old-ops", "operator", "new-ops", "operator"]
    revoked = runner.invoke(app, ["token", "revoke", "old-ops", "--station", str(station)])
    assert revoked.exit_code == 0, revoked.output
    assert list(load_station(station).api.tokens) == ["new-ops"]
    missing = runner.invoke(app, ["token", "revoke", "old-ops", "--station", str(station)])
    assert missing.exit_code == 2 and "no token of that name" in missing.stderr


def test_hashes_are_salted_and_checked_in_the_stored_form() -> None:
    token, name, entry = new_token("viewer", "screen", cost=4)
    assert hash_token(token, cost=4) != hash_token(token, cost=4)  # a fresh salt each time
    assert identify(token, {name: entry}) == (name, entry)
    assert identify(token + "x", {name: entry}) is None
    assert identify(None, {name: entry}) is None and identify("", {name: entry}) is None
    # A named token is checked against its own entry only: another entry's legacy token does not match it.
    legacy = hash_tokens({"bare-token": "operator"}, cost=4)
    both = {name: entry, **legacy}
    assert identify("bare-token", both) is not None and identify(f"{name}.bare-token", both) is None
    with pytest.raises(ValueError, match="not a token hash"):
        TokenEntry(role="viewer", hash="plain")


def test_rewrite_refuses_what_it_cannot_rewrite_safely() -> None:
    _, name, entry = new_token("viewer", "x", cost=4)
    dotted = 'name = "s"\napi.tokens.other = { role = "viewer", hash = "h" }\n'
    with pytest.raises(RewriteError):
        rewrite_tokens(dotted, {name: entry})
