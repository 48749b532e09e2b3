"""identity: reps' passwords (argon2 hashes) and the login attempts the rate limit counts"""
from alembic import op
import sqlalchemy as sa


revision = "0004_identity"
down_revision = "0003_routing"


def upgrade() -> None:
    # Plain ADD COLUMN (no batch "move and copy"): on SQLite, re-creating `workers` would break
    # the routing triggers of 0003 that name it.
    op.add_column("workers", sa.Column("password_hash", sa.String(length=200), nullable=True))
    op.add_column("workers", sa.Column("password_set_at", sa.DateTime(), nullable=True))
    op.add_column("workers", sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("workers", sa.Column("last_login_at", sa.DateTime(), nullable=True))

    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("client", sa.String(length=80), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_login_attempts_name_at", ["name", "at"], unique=False)
        batch_op.create_index("ix_login_attempts_client_at", ["client", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_client_at")
        batch_op.drop_index("ix_login_attempts_name_at")
    op.drop_table("login_attempts")
    for column in ("last_login_at", "failed_logins", "password_set_at", "password_hash"):
        op.drop_column("workers", column)  # SQLite >= 3.35 drops a column in place
