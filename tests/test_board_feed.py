"""The wallboard feed builds at most one board per interval across all web processes."""
from __future__ import annotations

import time

from hub.board_feed import mark_board_dirty, take_turn
from hub.services import build_services
from tests.conftest import make_settings


def test_two_processes_build_one_board_per_interval_between_them(sqlite_url, redis_client):
    settings = make_settings(sqlite_url)
    one, other = build_services(settings), build_services(settings)  # two web processes' services
    try:
        assert not take_turn(one, 0.5), "nothing changed: no board to build"
        mark_board_dirty(one)
        assert take_turn(one, 0.5)
        mark_board_dirty(other)  # a change right after: the other process ticks within the interval
        assert not take_turn(other, 0.5) and not take_turn(one, 0.5)
        time.sleep(0.6)
        assert take_turn(other, 0.5), "the change is published once the interval is over"
        assert not take_turn(one, 0.5)
        time.sleep(0.6)
        assert not take_turn(one, 0.5), "built once: nothing is left to build"
    finally:
        one.close()
        other.close()
