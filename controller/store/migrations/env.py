"""Alembic environment for the store, shipped inside the package.

The store runs migrations itself (`controller.store.schema.upgrade`) and hands us an open connection in
`config.attributes["connection"]`, so no alembic.ini is needed at run time. For developers the URL may
instead come from `sqlalchemy.url` (e.g. `alembic -x` workflows or autogenerate against a scratch database).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from controller.store.models import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
