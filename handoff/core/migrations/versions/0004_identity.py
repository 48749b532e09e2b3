"""identity: reps' passwords (argon2 hashes) and the login attempts the rate limit counts

Revision ID: 0004_identity
Revises: 0003_routing
"""
from alembic import op
import sqlalchemy as sa


revision = "0004_identity"
down_revision = "0003_routing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("password_set_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_login_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.alter_column("failed_logins", server_default=None)

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
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("last_login_at")
        batch_op.drop_column("failed_logins")
        batch_op.drop_column("password_set_at")
        batch_op.drop_column("password_hash")
