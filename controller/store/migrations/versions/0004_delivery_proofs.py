"""Proof of delivery: where, when and how each package left its vehicle, and an optional photo URL.

One row per delivered package, written in the same transaction as its move to `delivered` (so a restart
never finds a delivered package without its proof, or a proof without the delivery). `confirmed_by` says
whether the vehicle itself reported the release ("vehicle") or it was read from mission progress after
the report went unheard ("inferred"). `photo_url` is attached later by a vehicle integration or an operator.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_tz = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "delivery_proofs",
        sa.Column("package_id", sa.String(32), sa.ForeignKey("packages.id"), primary_key=True),
        sa.Column("vehicle_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("at", _tz, nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("alt_amsl_m", sa.Float),
        sa.Column("alt_agl_m", sa.Float),
        sa.Column("confirmed_by", sa.String(16), nullable=False),
        sa.Column("event", sa.String(200), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("photo_url", sa.String(2048)),
        sa.Column("photo_at", _tz),
    )
    # The console lists the latest proofs on every refresh: newest first without sorting the whole table.
    op.create_index("ix_delivery_proofs_at", "delivery_proofs", ["at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_proofs_at", table_name="delivery_proofs")
    op.drop_table("delivery_proofs")
