"""Per-customer aggregates on SQLite and PostgreSQL: the whole base staged in one pass and read back a chunk at
a time (binary COPY on PostgreSQL) gives every customer the same numbers as asking for that customer alone (a
plain query), and the binary COPY format that carries them reads back what was written."""
from __future__ import annotations

from dataclasses import fields
from datetime import datetime

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from crm import pgcopy
from crm.aggregates import Aggregates, concatenate, drop_staged, load_aggregates, read_staged, stage_aggregates
from crm.recompute import recompute_all
from tests.campaigns.conftest import db, sessions  # noqa: F401  (fixtures)
from tests.crm.test_recompute import NOW, seed_history


def test_the_base_staged_and_read_in_chunks_gives_each_customer_the_numbers_of_a_query_alone(sessions):  # noqa: F811
    ids = seed_history(sessions, customers=30)
    recompute_all(sessions, NOW)  # so that tiers and stages are not all the defaults
    with sessions.kw["bind"].connect() as connection, Session(bind=connection) as s:
        stage_aggregates(s, NOW, 365)  # a temporary table: this connection's
        parts, after = [], -1
        while len(part := read_staged(s, after, 7)):
            parts.append(part)
            after = int(part.customer_id[-1])
        everyone = concatenate(parts)
        assert [len(p) for p in parts] == [7, 7, 7, 7, 2]
        assert everyone.customer_id.tolist() == ids and everyone.orders.sum() > 0
        assert set(everyone.tier.tolist()) == {0, 1, 2}  # gold, silver and standard all came through
        for i, cid in enumerate(ids):
            alone = load_aggregates(s, NOW, 365, cid)
            for name in (f.name for f in fields(Aggregates)):
                assert getattr(alone, name).tolist() == [getattr(everyone, name)[i]], (cid, name)
        buyers = read_staged(s, -1, 1000, buyers_only=True)
        assert buyers.customer_id.tolist() == everyone.customer_id[everyone.purchase_days > 0].tolist()
        assert len(load_aggregates(s, NOW, 365, 999_999)) == 0
        drop_staged(s)
        s.commit()


def test_binary_copy_round_trips_every_column_kind(postgres_database):
    from hub.db import make_engine

    engine = make_engine(postgres_database)
    kinds = ["int2", "int4", "int8", "float8", "bool", "timestamp"]
    columns = [np.array([-5, 0, 32767]), np.array([1, -2, 2**31 - 1]), np.array([2**62, -1, 0]),
               np.array([0.1, np.nan, -1e300]), np.array([True, False, True]),
               np.array([0, 946_684_800, 1_700_000_000])]
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute("CREATE TEMP TABLE round_trip (a smallint, b integer, c bigint, d double precision, "
                       "e boolean, f timestamp, g varchar(3))")
        with cursor.copy("COPY round_trip FROM STDIN (FORMAT binary)") as copy:
            copy.write(pgcopy.encode([*zip(kinds, columns), ("char3", b"USD")]))
        assert conn.execute(text("SELECT f, g FROM round_trip ORDER BY a")).all()[1] == (datetime(2000, 1, 1), "USD")
        with cursor.copy("COPY (SELECT a, b, c, d, e, f FROM round_trip) TO STDOUT (FORMAT binary)") as copy:
            parts = list(pgcopy.decode(iter(copy), kinds, rows_per_part=2))
        assert [len(p["value0"]) for p in parts] == [2, 1]
        for i, original in enumerate(columns):
            back = np.concatenate([p[f"value{i}"] for p in parts])
            np.testing.assert_array_equal(back, original)
        with cursor.copy("COPY (SELECT a, NULL::bigint FROM round_trip) TO STDOUT (FORMAT binary)") as copy:
            with pytest.raises(ValueError, match="NULL"):
                list(pgcopy.decode(iter(copy), ["int2", "int8"], rows_per_part=10))
    engine.dispose()
