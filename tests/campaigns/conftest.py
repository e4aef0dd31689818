"""Fixtures shared by the campaign tests: a database session (SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest

from hub.db import make_engine, make_session_factory


@pytest.fixture
def sessions(database_url):
    """A session factory on a migrated, empty database (SQLite and PostgreSQL)."""
    engine = make_engine(database_url)
    yield make_session_factory(engine, check_routing_cache=True)
    engine.dispose()


@pytest.fixture
def db(sessions):
    """One session on a migrated, empty database (SQLite and PostgreSQL)."""
    session = sessions()
    yield session
    session.close()
