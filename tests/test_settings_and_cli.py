"""Settings from the environment, and the `python -m hub` admin commands run as a user would."""
from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import select

from config.settings import Settings, SettingsError, load_settings
from hub.db import make_engine, make_session_factory, transaction
from hub.models import Agent, Customer, Queue
from tests.conftest import ROOT


def test_settings_default_to_sqlite_and_local_redis():
    settings = load_settings({})
    assert settings.is_sqlite and settings.redis_url == "redis://localhost:6379/0"


def test_the_pool_size_and_the_routing_check_are_read_from_the_environment():
    settings = load_settings({"SWITCHBOARD_DB_POOL_SIZE": "54", "SWITCHBOARD_CHECK_ROUTING_CACHE": "True"})
    assert (settings.db_pool_size, settings.check_routing_cache) == (54, True)
    assert load_settings({"SWITCHBOARD_CHECK_ROUTING_CACHE": "0"}).check_routing_cache is False


@pytest.mark.parametrize("variable,value", [
    ("DATABASE_URL", "mysql://x"), ("REDIS_URL", "http://x"), ("PUBLIC_URL", "ftp://x"),
    ("TWILIO_ACCOUNT_SID", "AC123"), ("TWILIO_API_URL", "nope"), ("CALLER_ID", "5550006"),
    ("DEFAULT_REGION", "usa"), ("DB_POOL_SIZE", "0"), ("DB_POOL_SIZE", "many"), ("CHECK_ROUTING_CACHE", "maybe"),
])
def test_a_bad_value_names_its_variable(variable, value):
    with pytest.raises(SettingsError) as info:
        load_settings({f"SWITCHBOARD_{variable}": value})
    assert info.value.variable == f"SWITCHBOARD_{variable}"
    assert f"SWITCHBOARD_{variable}" in str(info.value)


def test_secrets_never_show_in_repr():
    settings = Settings(secret_key="s3cret-key", twilio_auth_token="t0ken-value")
    assert "s3cret-key" not in repr(settings) and "t0ken-value" not in repr(settings)


def hub(args, env):
    return subprocess.run([sys.executable, "-m", "hub", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def cli_env(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["SWITCHBOARD_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    return env


def test_start_up_stops_with_the_variable_name_on_a_bad_value(cli_env):
    result = hub(["db", "upgrade"], dict(cli_env, SWITCHBOARD_DATABASE_URL="oracle://x"))
    assert result.returncode == 2 and "SWITCHBOARD_DATABASE_URL" in result.stderr


def test_admin_commands_create_agents_and_queues_and_import_customers(cli_env, tmp_path):
    assert hub(["db", "upgrade"], cli_env).returncode == 0
    added = hub(["agents", "add", "ana", "--name", "Ana Agent", "--skills", "support:3,sales",
                 "--password", "password1"], cli_env)
    assert added.returncode == 0, added.stderr
    assert hub(["queues", "add", "Support", "--number", "(415) 555-0100", "--skills", "support:2"],
               cli_env).returncode == 0
    duplicate = hub(["agents", "add", "ana", "--name", "Again", "--password", "password1"], cli_env)
    assert duplicate.returncode == 2 and "exists already" in duplicate.stderr
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(
        "name,phone,tier,stage,owner,city\n"
        "Grace Hopper,212-555-0001,gold,loyal,ana,New York\n"
        ",212-555-0002,,,,\n"
        "Alan Turing,not a number,,,,\n"
        "Ada Lovelace,+44 20 7946 0018,silver,,,London\n"
        "Bad Tier,312-555-0003,platinum,,,\n"
        "Grace H.,(212) 555-0001,gold,loyal,,\n"
    )
    result = hub(["customers", "import", str(csv_path)], cli_env)
    assert result.returncode == 2
    assert "imported 2, updated 1, rejected 3" in result.stdout
    assert "line 3: name is empty" in result.stdout
    assert "line 4: phone" in result.stdout
    assert "line 6: tier must be one of" in result.stdout
    engine = make_engine(cli_env["SWITCHBOARD_DATABASE_URL"])
    with transaction(make_session_factory(engine, check_routing_cache=True)) as session:
        customers = {c.name: c for c in session.scalars(select(Customer))}
        assert set(customers) == {"Grace H.", "Ada Lovelace"}
        grace = customers["Grace H."]
        assert [p.number for p in grace.phones] == ["+12125550001"]
        assert grace.owner.login == "ana" and grace.custom_fields == {"city": "New York"}
        assert [p.number for p in customers["Ada Lovelace"].phones] == ["+442079460018"]
        agent = session.scalar(select(Agent).where(Agent.login == "ana"))
        assert agent.skill_levels == {"support": 3, "sales": 1}
        queue = session.scalar(select(Queue))
        assert queue.phone_number == "+14155550100" and queue.skill_levels == {"support": 2}
    engine.dispose()


def test_queue_rules_are_set_from_the_command_line_and_checked(cli_env):
    assert hub(["db", "upgrade"], cli_env).returncode == 0
    added = hub(["queues", "add", "Support", "--skills", "support:3", "--strategy", "round_robin",
                 "--escalate", "30:support:1", "--max-wait", "120", "--overflow", "queue:Sales",
                 "--timezone", "America/Chicago", "--open", "mon-fri 08:00-18:00", "--open", "sat 09:00-12:00"],
                cli_env)
    assert added.returncode == 0, added.stderr
    bad = hub(["queues", "set", "Support", "--timezone", "Mars/Olympus", "--open", "mon 08:00-18:00"], cli_env)
    assert bad.returncode == 2 and "unknown time zone" in bad.stderr
    assert hub(["queues", "set", "Support", "--overflow", "nowhere"], cli_env).returncode == 2
    assert hub(["queues", "set", "Support", "--after-hours", "voicemail", "--preferred-window", "30"],
               cli_env).returncode == 0
    engine = make_engine(cli_env["SWITCHBOARD_DATABASE_URL"])
    with transaction(make_session_factory(engine, check_routing_cache=True)) as session:
        queue = session.scalar(select(Queue))
        assert (queue.strategy, queue.max_wait_s, queue.overflow_action, queue.overflow_queue) == (
            "round_robin", 120, "queue", "Sales")
        assert queue.escalation == [{"after_s": 30, "skills": {"support": 1}}]
        assert queue.hours == {"timezone": "America/Chicago",
                               "days": {"0": ["08:00", "18:00"], "1": ["08:00", "18:00"], "2": ["08:00", "18:00"],
                                        "3": ["08:00", "18:00"], "4": ["08:00", "18:00"], "5": ["09:00", "12:00"]}}
        assert queue.preferred_window_s == 30 and queue.after_hours_action == "voicemail"
    engine.dispose()
