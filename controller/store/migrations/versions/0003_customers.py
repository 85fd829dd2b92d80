"""Customers are told: a tracking token per package, the ETA of each event, and the webhooks' stored cursors.

- `packages.tracking_token`: the read-only token of the package's tracking page (`/track/{token}`), made at
  intake. Stored as it is (not hashed): the dispatcher gets the tracking URL back on every read of the
  package, and the token opens one package's state, ETA and pin, nothing else. Unique, so a token names one
  package. Packages stored before this revision get one here.
- `package_events.eta`: the package's ETA as of that event, so a webhook that catches up after a restart
  pushes the ETA that was current then, and an ETA change between two pushes can be told.
- `webhook_cursors`: per station and webhook (the dispatcher's van feed, the station's notifications),
  the id of the last event the receiver acknowledged, written only by the leader (fenced by the lease), so a
  restarted or new leader resumes there instead of at the feed's end. `target` is a digest of the URL the
  cursor belongs to: a changed URL starts afresh at the feed's end.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_tz = sa.DateTime(timezone=True)
_BACKFILL_PAGE = 1000


def upgrade() -> None:
    with op.batch_alter_table("packages") as batch:
        batch.add_column(sa.Column("tracking_token", sa.String(64)))
        batch.create_index("ux_packages_tracking_token", ["tracking_token"], unique=True)
    with op.batch_alter_table("package_events") as batch:
        batch.add_column(sa.Column("eta", _tz))
    op.create_table(
        "webhook_cursors",
        sa.Column("station", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        sa.Column("epoch", sa.BigInteger),
        sa.Column("updated_at", _tz, nullable=False),
    )
    _backfill_tokens()


def _backfill_tokens() -> None:
    """Every package stored before this revision gets its tracking token (same form as at intake)."""
    conn = op.get_bind()
    table = sa.table("packages", sa.column("id", sa.String), sa.column("tracking_token", sa.String))
    while True:
        ids = conn.execute(
            sa.select(table.c.id).where(table.c.tracking_token.is_(None)).limit(_BACKFILL_PAGE)
        ).scalars()
        rows = [{"pid": pid, "token": secrets.token_urlsafe(16)} for pid in ids]
        if not rows:
            return
        conn.execute(
            table.update()
            .where(table.c.id == sa.bindparam("pid"))
            .values(tracking_token=sa.bindparam("token")),
            rows,
        )


def downgrade() -> None:
    op.drop_table("webhook_cursors")
    with op.batch_alter_table("package_events") as batch:
        batch.drop_column("eta")
    with op.batch_alter_table("packages") as batch:
        batch.drop_index("ux_packages_tracking_token")
        batch.drop_column("tracking_token")
