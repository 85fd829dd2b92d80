"""Fixtures for controller tests: `store_url`, one fresh database per test on SQLite and on PostgreSQL.

PostgreSQL comes from LASTMILE_TEST_POSTGRES_URL (CI: postgresql+psycopg://postgres@127.0.0.1:5432/test).
Each test gets its own schema (via `search_path` in the URL), dropped afterwards, so parallel runs and
other helpers' tests never see each other's rows. Unset variable: the PostgreSQL cases skip, saying so;
with CI=true they fail instead, so a misconfigured CI cannot pass while testing half the store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from controller.store import Store

PG_ENV = "LASTMILE_TEST_POSTGRES_URL"
PG_MISSING = f"{PG_ENV} not set: PostgreSQL store tests did not run"


def _postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{PG_MISSING} (CI=true requires them)")
        pytest.skip(PG_MISSING)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose `search_path` is a fresh schema of its own, dropped after the test."""
    base = _postgres_base_url()
    schema = f"lm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of its own, in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database URL: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open `Store` on a fresh database (SQLite and PostgreSQL, via `store_url`), closed afterwards."""
    s = Store(store_url)
    yield s
    s.close()
