"""given back: when a cancelled order's line gave back what the provisioning system held for it

A cancelled order's jobs are cancelled and its reservations released (flows/provisioning.py,
`cancel_order`); `given_back_at` says that was done for the line, so a run restarted after a
kill does not record it twice. Plain ADD COLUMN.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_given_back"
down_revision = "0008_step_attempts"


def upgrade() -> None:
    op.add_column("fulfilment_lines", sa.Column("given_back_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("fulfilment_lines", "given_back_at")
