"""quotes: requests for quotation, versioned quotes, and the link from a quote to its order"""

import sqlalchemy as sa
from alembic import op

revision = "0005_quotes"
down_revision = "0004_identity"


def upgrade() -> None:
    op.create_table(
        "quote_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("request_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("announced_at", sa.DateTime(), nullable=True),
        sa.Column("flow_run_id", sa.String(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("answered_by", sa.String(), nullable=True),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quote_requests_customer_id", "quote_requests", ["customer_id"], unique=False)

    # Existing quotes are orders' quotes: version 1 of no request. Plain ADD COLUMN, no batch copy.
    op.add_column("quotes", sa.Column("request_id", sa.String(length=40), nullable=True))
    op.add_column("quotes", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.create_index("ix_quotes_request_id", "quotes", ["request_id"], unique=False)
    op.create_index("ux_quotes_request_version", "quotes", ["request_id", "version"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_quotes_request_version", table_name="quotes")
    op.drop_index("ix_quotes_request_id", table_name="quotes")
    op.drop_column("quotes", "version")  # SQLite >= 3.35 drops a column in place
    op.drop_column("quotes", "request_id")
    op.drop_index("ix_quote_requests_customer_id", table_name="quote_requests")
    op.drop_table("quote_requests")
