"""routing_lock.version: a counter the database bumps whenever anything the routing engine loads changes

The routing state is kept in memory between rounds (hub.routing_cache) and trusted only while this counter
is where the last round left it. Triggers, not the application, bump it, so no writer can forget to.
On PostgreSQL they run BEFORE the row changes, so a writer takes the routing lock's row before any row it
changes: the same order as every routing flow (hub.db.lock_routing), so they cannot deadlock each other.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# what hub.routing_store.load_state reads, table by table: (operations, column list for UPDATE OF, row filter)
ACTIVE = "('waiting', 'offered', 'connecting', 'connected')"
CALL_COLUMNS = ("sid, leg, queue_id, campaign_id, created_at, routing_state, agent_id, offer_expires_at, "
                "tried_agent_ids, priority_s, preferred_agent_ids, callback, customer_zones, connected_at")
AGENT_COLUMNS = ("id, presence, work, idle_since, call_sid, break_reason, pending_presence, pending_reason, "
                 "missed_offers")
TRIGGERS = [
    # an incoming call is stored 'arriving' without taking the routing lock; routing sees it as an event
    ("calls", "INSERT", None, f"NEW.routing_state IN {ACTIVE} OR NEW.connected_at IS NOT NULL"),
    ("calls", "UPDATE", CALL_COLUMNS, None),
    ("calls", "DELETE", None, None),
    ("agents", "INSERT", None, None),
    ("agents", "UPDATE", AGENT_COLUMNS, None),
    ("agents", "DELETE", None, None),
    ("agent_skills", "INSERT", None, None),
    ("agent_skills", "UPDATE", None, None),
    ("agent_skills", "DELETE", None, None),
    ("queues", "INSERT", None, None),
    ("queues", "UPDATE", None, None),
    ("queues", "DELETE", None, None),
    ("queue_skills", "INSERT", None, None),
    ("queue_skills", "UPDATE", None, None),
    ("queue_skills", "DELETE", None, None),
    ("campaigns", "INSERT", None, None),
    ("campaigns", "UPDATE", "wrap_up_s", None),
    ("campaigns", "DELETE", None, None),
]
TABLES = sorted({table for table, _, _, _ in TRIGGERS})
BUMP = "UPDATE routing_lock SET version = version + 1 WHERE id = 1"


def _name(table: str, operation: str) -> str:
    return f"routing_version_{table}_{operation.lower()}"


def upgrade() -> None:
    with op.batch_alter_table('routing_lock') as batch:
        batch.add_column(sa.Column('version', sa.BigInteger(), nullable=False, server_default='0'))
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(f"CREATE FUNCTION bump_routing_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN {BUMP}; IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$")
    for table, operation, columns, when in TRIGGERS:
        event = f"{operation} OF {columns}" if columns else operation
        if postgres:
            condition = f" WHEN ({when})" if when else ""
            op.execute(f"CREATE TRIGGER {_name(table, operation)} BEFORE {event} ON {table} FOR EACH ROW"
                       f"{condition} EXECUTE FUNCTION bump_routing_version()")
        else:
            condition = f" WHEN {when}" if when else ""
            op.execute(f"CREATE TRIGGER {_name(table, operation)} AFTER {event} ON {table} FOR EACH ROW"
                       f"{condition} BEGIN {BUMP}; END")
    if postgres:  # TRUNCATE fires no row triggers
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {_name(table, 'TRUNCATE')} BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION bump_routing_version()")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for table in TABLES:
            op.execute(f"DROP TRIGGER {_name(table, 'TRUNCATE')} ON {table}")
    for table, operation, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {_name(table, operation)}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION bump_routing_version()")
    with op.batch_alter_table('routing_lock') as batch:
        batch.drop_column('version')
