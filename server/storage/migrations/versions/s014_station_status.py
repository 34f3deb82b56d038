"""station status (last seen, self-test, backups waiting), station keys and enrolment codes
(issue 14)

Revision ID: s014
Revises: c012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s014"
down_revision: str | None = "c012"
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
    op.create_table(
        "station_keys",
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("public_key", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_station_keys_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_station_keys")),
    )
    op.create_table(
        "station_enrolment_codes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("station_id", sa.String(length=36), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_station_enrolment_codes_station_id_stations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_enrolment_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_station_enrolment_codes_code_hash")),
    )
    with op.batch_alter_table("station_enrolment_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_station_enrolment_codes_station_id"), ["station_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("station_enrolment_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_station_enrolment_codes_station_id"))
    op.drop_table("station_enrolment_codes")
    op.drop_table("station_keys")
    op.drop_table("station_status")
