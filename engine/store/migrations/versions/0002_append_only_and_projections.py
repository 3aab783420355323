"""Refuse UPDATE and DELETE on the log in the database itself; add the cohort
progress read model and its checkpoint.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY = ("events", "commands")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("""
            CREATE OR REPLACE FUNCTION smartcity_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'smartcity: % is append-only (% refused)', TG_TABLE_NAME, TG_OP;
            END $$""")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
                       f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION smartcity_append_only()")
    else:
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON "
                           f"{table} BEGIN SELECT RAISE(ABORT, 'smartcity: {table} is "
                           f"append-only ({action} refused)'); END")

    op.create_table(
        "projection_checkpoints",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "plan_progress",
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("programme_id", sa.String(100), nullable=False),
        sa.Column("region_code", sa.String(10), nullable=False),
        sa.Column("region_name", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("review_round", sa.Integer, nullable=False),
        sa.Column("findings", sa.Integer, nullable=False),
        sa.Column("refusals", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.String(27), nullable=False),
    )
    op.create_index("ix_plan_progress_programme", "plan_progress", ["programme_id"])
    op.create_table(
        "form_progress",
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("stage", sa.String(20), primary_key=True),
        sa.Column("pillar", sa.String(60), primary_key=True),
        sa.Column("form", sa.String(80), primary_key=True),
        sa.Column("submissions", sa.Integer, nullable=False),
    )
    op.create_table(
        "quick_win_progress",
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("quick_win_id", sa.String(80), primary_key=True),
        sa.Column("pillar", sa.String(60), nullable=False),
        sa.Column("completion_percent", sa.Integer, nullable=False),
        sa.Column("reports", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("quick_win_progress", "form_progress", "plan_progress",
                  "projection_checkpoints"):
        op.drop_table(table)
    bind = op.get_bind()
    for table in APPEND_ONLY:
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS smartcity_append_only()")
