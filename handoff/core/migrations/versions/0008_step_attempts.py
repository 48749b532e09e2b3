"""step attempts: the attempt a step waits on, and the text its flow wrote, kept by handoff

`attempt` only goes up: an answer refused for one attempt is never read again (a re-run from
the top re-checked attempt 0's stored answer, and took it once its sender held the item
again). `description` is what reps read above the form: from handoff's database, not from
Prefect's run input, which anyone who reaches Prefect's API can rewrite. `answer_sent_at`: a
rep's answer is on its way to the run (sent, not yet recorded): an answer through another
channel (the customer's own, to a quote) comes second; `sent_answer` is that answer with its
proof, so a run restarted before recording it (its process killed) takes it from here. Plain ADD COLUMN
(no table rebuild), so SQLite keeps work_items' change-counter triggers.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_step_attempts"
down_revision = "0007_trusted_devices"


def upgrade() -> None:
    op.add_column("work_items", sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("work_items", sa.Column("description", sa.Text(), nullable=True))
    op.add_column("work_items", sa.Column("answer_sent_at", sa.DateTime(), nullable=True))
    op.add_column("work_items", sa.Column("sent_answer", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("work_items", "sent_answer")
    op.drop_column("work_items", "answer_sent_at")
    op.drop_column("work_items", "description")
    op.drop_column("work_items", "attempt")
