"""the hearing record: transcripts and mediation agreements, their versions, signatures,
refusals and one-time signing codes (issue 15)

Revision ID: r015
Revises: s014
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r015"
down_revision: str | None = "s014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def _index(table: str, column: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "record_documents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("hearing_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_document_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("signing_requested_at", when, nullable=True),
        sa.Column("finalised_at", when, nullable=True),
        sa.Column("finalised_by", sa.String(length=100), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        _fk("record_documents", "hearing_id", "hearings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_documents")),
        sa.UniqueConstraint("hearing_id", "kind", name=op.f("uq_record_documents_hearing_id")),
    )
    _index("record_documents", "hearing_id")
    op.create_table(
        "record_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("saved_by", sa.String(length=100), nullable=False),
        sa.Column("saved_by_name", sa.String(length=200), nullable=False),
        sa.Column("saved_at", when, nullable=False),
        _fk("record_versions", "document_id", "record_documents"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_versions")),
        sa.UniqueConstraint("document_id", "version", name=op.f("uq_record_versions_document_id")),
    )
    _index("record_versions", "document_id")
    op.create_table(
        "record_signatures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("participant_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("where", sa.String(length=16), nullable=False),
        sa.Column("image_png", sa.LargeBinary(), nullable=True),
        sa.Column("signed_by", sa.String(length=100), nullable=False),
        sa.Column("at", when, nullable=False),
        _fk("record_signatures", "document_id", "record_documents"),
        _fk("record_signatures", "participant_id", "participants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_signatures")),
    )
    _index("record_signatures", "document_id")
    _index("record_signatures", "participant_id")
    op.create_table(
        "record_signing_codes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("participant_id", sa.String(length=36), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("used_at", when, nullable=True),
        _fk("record_signing_codes", "document_id", "record_documents"),
        _fk("record_signing_codes", "participant_id", "participants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_signing_codes")),
    )
    _index("record_signing_codes", "document_id")
    _index("record_signing_codes", "participant_id")


def downgrade() -> None:
    for table, columns in (
        ("record_signing_codes", ("participant_id", "document_id")),
        ("record_signatures", ("participant_id", "document_id")),
        ("record_versions", ("document_id",)),
        ("record_documents", ("hearing_id",)),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
        op.drop_table(table)
