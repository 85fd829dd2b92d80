"""Fixtures for the VDA 5050 driver tests: the shared robot fixtures (real mosquitto, schema tap)."""

from tests.robot_fixtures import broker, controller_link, schema_tap  # noqa: F401
