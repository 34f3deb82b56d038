"""booking: case cause and mode, hearing clerk and cancel reason, participant phone

Revision ID: c012
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c012"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("cause", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column(
                "mode",
                sa.Enum(
                    "hearing",
                    "mediation",
                    name="hearingmode",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                server_default="hearing",
                nullable=False,
            )
        )
    with op.batch_alter_table("hearings") as batch:
        batch.add_column(sa.Column("clerk_user_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.String(length=500), nullable=True))
        batch.create_foreign_key(
            op.f("fk_hearings_clerk_user_id_users"), "users", ["clerk_user_id"], ["id"]
        )
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("phone", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("phone")
    with op.batch_alter_table("hearings") as batch:
        batch.drop_constraint(op.f("fk_hearings_clerk_user_id_users"), type_="foreignkey")
        batch.drop_column("cancel_reason")
        batch.drop_column("clerk_user_id")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("mode")
        batch.drop_column("cause")
