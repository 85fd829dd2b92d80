"""Initial schema: packages, their events, and missions.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")
_tz = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "packages",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("weight_kg", sa.Float, nullable=False),
        sa.Column("dest_lat", sa.Float, nullable=False),
        sa.Column("dest_lon", sa.Float, nullable=False),
        sa.Column("length_m", sa.Float),
        sa.Column("width_m", sa.Float),
        sa.Column("height_m", sa.Float),
        sa.Column("deadline", _tz),
        sa.Column("earliest", _tz),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("recipient", sa.String(200)),
        sa.Column("note", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", _tz, nullable=False),
        sa.Column("updated_at", _tz, nullable=False),
        sa.Column("vehicle_id", sa.String(64)),
        sa.Column("mode", sa.String(8)),
        sa.Column("eta", _tz),
        sa.Column("energy_margin_wh", sa.Float),
        sa.Column("reasons", _json, nullable=False),
        sa.Column("detail", _json, nullable=False),
        sa.UniqueConstraint("key", name="uq_packages_key"),
    )
    op.create_index("ix_packages_state", "packages", ["state"])
    op.create_index("ix_packages_created_id", "packages", ["created_at", "id"])

    op.create_table(
        "package_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("package_id", sa.String(32), sa.ForeignKey("packages.id"), nullable=False),
        sa.Column("at", _tz, nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("detail", _json, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_package_events_package", "package_events", ["package_id", "id"])

    op.create_table(
        "missions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("package_id", sa.String(32), sa.ForeignKey("packages.id"), nullable=False),
        sa.Column("vehicle_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("plan", _json, nullable=False),
        sa.Column("created_at", _tz, nullable=False),
        sa.Column("updated_at", _tz, nullable=False),
    )
    op.create_index("ix_missions_state", "missions", ["state"])
    op.create_index("ix_missions_package", "missions", ["package_id"])


def downgrade() -> None:
    op.drop_table("missions")
    op.drop_table("package_events")
    op.drop_table("packages")
