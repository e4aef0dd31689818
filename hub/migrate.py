"""Schema migrations (Alembic), run by `python -m hub db upgrade` and by the demo and tests."""
from __future__ import annotations

import os

from alembic import command
from alembic.config import Config

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def alembic_config(database_url: str) -> Config:
    """Return an Alembic config for `database_url`, without an ini file."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema at `database_url` to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Take the schema at `database_url` back to `revision`."""
    command.downgrade(alembic_config(database_url), revision)
