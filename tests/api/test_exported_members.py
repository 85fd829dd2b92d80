"""Guards the public surface of the API package and the operator commands."""

from __future__ import annotations

import controller.api
from controller import cli_ops, client


def test_api_package_exports() -> None:
    assert controller.api.__all__ == ["API_VERSION", "create_app"]


def test_operator_commands_and_client_exports() -> None:
    assert set(cli_ops.COMMANDS) == {
        "status",
        "watch",
        "submit",
        "import",
        "launch",
        "abort",
        "ground",
        "unground",
        "close",
        "open",
        "report",
    }
    assert set(client.__all__) == {"DEFAULT_URL", "ApiError", "LastmileClient", "Unreachable", "answer_of"}
