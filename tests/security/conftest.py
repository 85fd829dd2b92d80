"""Fixtures for the security tests: the API tests' running station (`api`, `make_api`), shared rather than
copied (the hostile-client tests in test_api_hardening.py attack the same station the API tests use)."""

from tests.api.conftest import api, make_api  # noqa: F401
