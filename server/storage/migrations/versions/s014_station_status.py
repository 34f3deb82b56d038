"""station status: last seen, self-test, backups waiting (issue 14)

Revision ID: s014
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s014"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "station_status",
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("self_test", sa.JSON(), nullable=True),
        sa.Column("self_test_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_backups", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_station_status_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_station_status")),
    )


def downgrade() -> None:
    op.drop_table("station_status")
