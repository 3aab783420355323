"""Two fewer index pages per append: drop the events' command-id index (commands are
found through the ``commands`` table's key; nothing reads the index) and, on SQLite,
make ``commands`` a WITHOUT ROWID table (its rows live in the primary-key B-tree
instead of a table and a separate index). The rows and the append-only triggers are kept.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column]:
    return [
        sa.Column("command_id", sa.String(200), primary_key=True),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("first_version", sa.Integer, nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False),
    ]


def _rebuild_commands(with_rowid: bool) -> None:
    """SQLite only: copy ``commands`` into a new table of the other kind, swap it in and
    put the append-only triggers back (dropping a table drops its triggers)."""
    op.create_table("commands_rebuilt", *_columns(), sqlite_with_rowid=with_rowid)
    op.execute("INSERT INTO commands_rebuilt (command_id, stream_id, first_version, "
               "last_version) SELECT command_id, stream_id, first_version, last_version "
               "FROM commands")
    op.drop_table("commands")
    op.rename_table("commands_rebuilt", "commands")
    for action in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER commands_no_{action.lower()} BEFORE {action} ON commands "
                   f"BEGIN SELECT RAISE(ABORT, 'smartcity: commands is append-only "
                   f"({action} refused)'); END")


def upgrade() -> None:
    op.drop_index("ix_events_command_id", table_name="events")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_commands(with_rowid=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_commands(with_rowid=True)
    op.create_index("ix_events_command_id", "events", ["command_id"])
