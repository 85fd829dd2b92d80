"""Fixtures for the fault suite: a fresh PostgreSQL schema per test (`postgres_url`, shared with the store
tests: skipped, saying why, without LASTMILE_TEST_POSTGRES_URL) and the e2e simulated copters."""

from __future__ import annotations

from tests.controller.conftest import postgres_url  # noqa: F401 (a fixture for the tests here)
from tests.e2e.serving import served_copters  # noqa: F401 (a fixture for the tests here)
