"""The reminder outbox: each deadline reminder recorded once, before it is sent.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminder_outbox",
        sa.Column("reminder_id", sa.String(300), primary_key=True),
        sa.Column("programme_id", sa.String(100), nullable=False),
        sa.Column("region_code", sa.String(10), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("deadline", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.Column("sent_at", sa.String(27), nullable=True),
        sa.Column("delivered_by", sa.String(200), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("reminder_outbox")
