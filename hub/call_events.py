"""Store a telephony callback once: its unique keys (sequence number, idempotency token) make a repeat a no-op.

One `INSERT ... ON CONFLICT DO NOTHING` (PostgreSQL and SQLite alike) instead of a savepoint around an insert
that may fail: a webhook's hot path saves two round trips, and a concurrent twin still waits for the first to
commit before it is told it is a repeat.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.columns import utcnow
from hub.models import CallEvent


def record_once(session: Session, **values: Any) -> bool:
    """Insert one `call_events` row; False when the same callback was stored before (nothing is written)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values.setdefault("received_at", utcnow())
    stored = session.execute(insert(CallEvent).values(**values).on_conflict_do_nothing().returning(CallEvent.id))
    return stored.scalar() is not None
