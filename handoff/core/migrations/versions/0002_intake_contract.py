"""intake contract: the quarantine keeps the bytes exactly as received"""
import sqlalchemy as sa
from alembic import op

revision = "0002_intake"
down_revision = "0001"


def upgrade() -> None:
    # `raw` stays: a printable text of the input to read; `raw_bytes` is the input itself
    # (entries quarantined before this revision have only their text).
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_bytes", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_column("raw_bytes")
