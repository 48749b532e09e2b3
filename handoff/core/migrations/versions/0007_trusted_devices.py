"""trusted devices: sign-in attempts from a device a rep signed in on before are limited apart"""

import sqlalchemy as sa
from alembic import op

revision = "0007_trusted_devices"
down_revision = "0006_ended_sessions"


def upgrade() -> None:
    op.add_column("login_attempts", sa.Column("device", sa.String(length=64), nullable=True))
    op.create_index("ix_login_attempts_device_at", "login_attempts", ["device", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_login_attempts_device_at", table_name="login_attempts")
    with op.batch_alter_table("login_attempts") as batch:
        batch.drop_column("device")
