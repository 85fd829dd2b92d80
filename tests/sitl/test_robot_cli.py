"""`lastmile sitl robot` arguments (the running CLI is exercised in tests/e2e/test_robot_link_loss.py)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from sitl.robot.cli import parse_broker_url, robot


def test_broker_urls():
    assert parse_broker_url("mqtt://127.0.0.1:1884") == ("127.0.0.1", 1884, None, None)
    assert parse_broker_url("mqtt://ann:pw@localhost") == ("localhost", 1883, "ann", "pw")
    with pytest.raises(ValueError, match="scheme must be mqtt://"):
        parse_broker_url("http://localhost:1883")
    with pytest.raises(ValueError, match="port"):
        parse_broker_url("mqtt://localhost:99999")
    with pytest.raises(ValueError, match="no host"):
        parse_broker_url("mqtt://:1883")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--broker", "http://x"], "scheme must be mqtt://"),
        (["--version", "1.1.0"], "expected one of 2.0.0, 2.1.0, 3.0.0"),
        (["--count", "0"], "greater than or equal to 1"),
    ],
)
def test_bad_arguments_are_refused_with_the_option_named(args, complaint):
    app = typer.Typer()
    app.command()(robot)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert complaint in " ".join(result.output.replace("│", " ").split())  # unwrap rich's error box
