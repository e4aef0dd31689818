"""Database engine and sessions.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with BEGIN IMMEDIATE so that
concurrent writers queue instead of failing half-way. On PostgreSQL, routing flows serialise on one row
locked with SELECT ... FOR UPDATE.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from hub.models import RoutingLock
from hub.routing_cache import RoutingStateCache, watch


def make_engine(database_url: str, pool_size: int = 20) -> Engine:
    """Create the SQLAlchemy engine for `database_url` with the project's connection settings.

    On PostgreSQL a process keeps up to `pool_size` connections open, and opens up to as many again for a
    burst, closing those once they are returned. Size it to the process's threads: every connection past the
    pool is a new PostgreSQL backend (a fork and a login) for each transaction that needs it, which at 100
    calls a second cost more than the webhooks' own queries."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(database_url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, record):  # pragma: no cover - driver hook
            dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below drive transactions
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - driver hook
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    return create_engine(database_url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


def make_session_factory(engine: Engine, check_routing_cache: bool = False) -> sessionmaker[Session]:
    """Sessions that keep the routing state between rounds (hub.routing_cache); with `check_routing_cache`,
    every reuse is compared with a full load."""
    factory = sessionmaker(engine, expire_on_commit=False)
    watch(factory, RoutingStateCache(check=check_routing_cache))
    return factory


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit when the block succeeds, roll back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def lock_routing(session: Session) -> None:
    """Serialise routing decisions across processes (SQLite already holds its write lock).

    Take it before any other row lock in the transaction: every routing flow locks in that order, so two
    processes can never wait on each other.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    transaction_ = session.get_transaction()
    if transaction_ is not None and session.info.get("routing_locked_in") is transaction_:
        return  # held already: a flow that locks and then decides need not ask the database twice
    session.execute(select(RoutingLock.id).where(RoutingLock.id == 1).with_for_update())
    session.info["routing_locked_in"] = session.get_transaction()
