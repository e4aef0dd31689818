"""The migrations and the models describe the same schema, on both databases."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import campaigns.models  # noqa: F401  (registers the campaign tables)
from hub.db import make_engine
from hub.models import Base


def test_migrations_match_the_models(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
