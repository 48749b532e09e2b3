"""routing index: change counter on work items and workers, hot-path indexes

Create Date: 2026-11-29

Every router process keeps the active work items and the reps in memory and re-reads only the
rows whose `change_seq` is above the highest it has seen (handoff/core/routing/live.py). That is
only correct if a row committed later never carries a smaller `change_seq` than one already
seen, so the stamp comes from the database, not from the writers, and is commit-ordered:

- SQLite: one writer at a time, so a counter row (`change_counter`) bumped inside the writing
  transaction is in commit order. AFTER triggers stamp each inserted or updated row.
- PostgreSQL: a sequence alone is not (transaction A takes 10, B takes 11 and commits first; a
  reader that saw 11 would skip 10 for ever). So every statement that writes work_items,
  workers or worker_skills first takes the routing lock (the transaction-scoped advisory lock
  the router already takes, via a BEFORE ... FOR EACH STATEMENT trigger: before any row lock,
  so no lock-order deadlock), and only then stamps rows from the sequence. A transaction holds
  the lock until it ends, so values are handed out in commit order.

Skill changes stamp their worker. Triggers cover every writer (ORM, Core, raw SQL), so nobody
has to remember to bump a counter.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_routing"
down_revision = "0002_intake"

ROUTING_LOCK = 0x68616E64  # handoff.core.routing.claims.ROUTING_LOCK

# Each insert or update of a work item or a worker takes the next counter value; an update that
# sets change_seq itself (the stamp below) does not fire again.
_SQLITE_STAMP = """CREATE TRIGGER {table}_stamp_{event} AFTER {EVENT} ON {table}{when} BEGIN
         UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
         UPDATE {table} SET change_seq = (SELECT seq FROM change_counter WHERE id = 1) WHERE id = NEW.id;
       END"""

SQLITE_TRIGGERS = [
    *(
        _SQLITE_STAMP.format(table=table, event=event.lower(), EVENT=event, when=when)
        for table in ("work_items", "workers")
        for event, when in (("INSERT", ""), ("UPDATE", "\n       WHEN NEW.change_seq IS OLD.change_seq"))
    ),
    """CREATE TRIGGER worker_skills_stamp_insert AFTER INSERT ON worker_skills BEGIN
         UPDATE workers SET change_seq = change_seq WHERE id = NEW.worker_id;
       END""",
    """CREATE TRIGGER worker_skills_stamp_update AFTER UPDATE ON worker_skills BEGIN
         UPDATE workers SET change_seq = change_seq WHERE id IN (NEW.worker_id, OLD.worker_id);
       END""",
    """CREATE TRIGGER worker_skills_stamp_delete AFTER DELETE ON worker_skills BEGIN
         UPDATE workers SET change_seq = change_seq WHERE id = OLD.worker_id;
       END""",
]
SQLITE_TRIGGER_NAMES = [t.split()[2] for t in SQLITE_TRIGGERS]

POSTGRES_UP = [
    "CREATE SEQUENCE routing_change_seq",  # CACHE 1: values are handed out in call order
    f"""CREATE FUNCTION routing_take_turn() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock({ROUTING_LOCK}); RETURN NULL; END $$""",
    """CREATE FUNCTION routing_stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.change_seq := nextval('routing_change_seq'); RETURN NEW; END $$""",
    """CREATE FUNCTION routing_stamp_worker_of_skill() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP <> 'INSERT' THEN UPDATE workers SET change_seq = 0 WHERE id = OLD.worker_id; END IF;
          IF TG_OP <> 'DELETE' THEN UPDATE workers SET change_seq = 0 WHERE id = NEW.worker_id; END IF;
          RETURN NULL;
        END $$""",
    *(f"""CREATE TRIGGER {table}_take_turn BEFORE INSERT OR UPDATE OR DELETE ON {table}
          FOR EACH STATEMENT EXECUTE FUNCTION routing_take_turn()"""
      for table in ("work_items", "workers", "worker_skills")),
    *(f"""CREATE TRIGGER {table}_stamp BEFORE INSERT OR UPDATE ON {table}
          FOR EACH ROW EXECUTE FUNCTION routing_stamp_change()"""
      for table in ("work_items", "workers")),
    """CREATE TRIGGER worker_skills_stamp AFTER INSERT OR UPDATE OR DELETE ON worker_skills
       FOR EACH ROW EXECUTE FUNCTION routing_stamp_worker_of_skill()""",
]
POSTGRES_DOWN = [
    *(f"DROP TRIGGER IF EXISTS {table}_take_turn ON {table}" for table in ("work_items", "workers", "worker_skills")),
    *(f"DROP TRIGGER IF EXISTS {table}_stamp ON {table}" for table in ("work_items", "workers", "worker_skills")),
    "DROP FUNCTION IF EXISTS routing_stamp_worker_of_skill()",
    "DROP FUNCTION IF EXISTS routing_stamp_change()",
    "DROP FUNCTION IF EXISTS routing_take_turn()",
    "DROP SEQUENCE IF EXISTS routing_change_seq",
]


def upgrade() -> None:
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO change_counter (id, seq) VALUES (1, 0)")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_seq", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index("ix_work_items_change_seq", ["change_seq"], unique=False)
        batch_op.create_index("ix_work_items_assignee_state", ["assignee_id", "state"], unique=False)
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_seq", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index("ix_workers_change_seq", ["change_seq"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_UP if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
    else:
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index("ix_workers_change_seq")
        batch_op.drop_column("change_seq")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index("ix_work_items_assignee_state")
        batch_op.drop_index("ix_work_items_change_seq")
        batch_op.drop_column("change_seq")
    op.drop_table("change_counter")
