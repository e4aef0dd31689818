"""Campaign set-up: create and update campaigns with every setting checked, and the screening rules.

Settings are compliant by default (abandon target 3%, 25 s ring, an abandon message naming the seller and
their number). Every problem in a request is reported at once, each naming its setting.
"""
from __future__ import annotations

import re
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import (DEFAULT_RETRY_RULES, DEFAULT_SCHEDULE, DIAL_MODES, RETRY_OUTCOMES, Campaign,
                              CampaignAgent)
from hub.errors import FlowError
from hub.models import Agent
from hub.phone import InvalidNumber, to_e164

QUESTION_TYPES = ("yes_no", "choice", "text", "number")
RULE_OPERATORS = ("equals", "in", "min", "max")
MACHINE_ACTIONS = ("hang_up", "message")
COST_FIELDS = ("cost_per_lead", "cost_per_minute", "cost_per_agent_hour")
SETTINGS = ("name", "caller_id", "mode", "schedule", "script", "retry_rules", "max_attempts", "abandon_target",
            "ring_timeout_s", "amd", "machine_action", "machine_message", "abandon_message", "wrap_up_s", "team",
            "territories", *COST_FIELDS, "requires_registry", "agents")
MAX_ABANDON_TARGET = 0.03
MIN_RING_TIMEOUT_S = 15
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HHMM = re.compile(r"^\d{2}:\d{2}$")


class CampaignError(FlowError):
    """A campaign's settings were refused; `problems` lists each one as (setting, message)."""

    def __init__(self, problems: list[tuple[str, str]], status: int = 400) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems), status)
        self.problems = problems


def default_abandon_message(name: str, caller_id: str) -> str:
    """Return the recorded message for an abandoned call: who is calling and how to call back."""
    return (f"This is {name} calling from {caller_id}. We are sorry we could not connect you to a person. "
            f"To be removed from our list, call {caller_id}.")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Checker:
    def __init__(self, region: str) -> None:
        self.region = region
        self.problems: list[tuple[str, str]] = []

    def fail(self, name: str, message: str) -> None:
        self.problems.append((name, message))

    def schedule(self, value: Any, current: dict[str, Any]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail("schedule", "must be an object with timezone, days, start and end")
            return None
        unknown = set(value) - {"timezone", "days", "start", "end"}
        if unknown:
            self.fail("schedule", f"unknown keys {sorted(unknown)}")
        merged = {**current, **value}
        try:
            ZoneInfo(str(merged["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            self.fail("schedule.timezone", f"unknown time zone {merged['timezone']!r} (use e.g. America/New_York)")
        days = merged["days"]
        if (not isinstance(days, list) or not days or not all(_integer(d) and 0 <= d <= 6 for d in days)
                or len(set(days)) != len(days)):
            self.fail("schedule.days", "must be a non-empty list of distinct days 0 (Monday) to 6 (Sunday)")
        times = []
        for key in ("start", "end"):
            try:
                if not _HHMM.match(str(merged[key])):
                    raise ValueError
                times.append(time.fromisoformat(merged[key]))
            except ValueError:
                self.fail(f"schedule.{key}", f"must be a time HH:MM, not {merged[key]!r}")
        if len(times) == 2 and times[0] >= times[1]:
            self.fail("schedule", "start must be before end")
        return merged

    def script(self, value: Any) -> dict[str, Any] | None:
        if not isinstance(value, dict) or set(value) - {"questions", "qualify"}:
            self.fail("script", "must be an object with 'questions' and 'qualify'")
            return None
        questions, rules = value.get("questions", []), value.get("qualify", [])
        types: dict[str, str] = {}
        options: dict[str, list] = {}
        if not isinstance(questions, list):
            self.fail("script.questions", "must be a list")
            questions = []
        for i, q in enumerate(questions):
            where = f"script.questions[{i}]"
            if not isinstance(q, dict):
                self.fail(where, "must be an object with key, text and type")
                continue
            key, kind = q.get("key"), q.get("type")
            if not isinstance(key, str) or not _KEY.match(key):
                self.fail(f"{where}.key", "must be lowercase letters, digits or _ (starting with a letter)")
            elif key in types:
                self.fail(f"{where}.key", f"{key!r} is used twice")
            if not isinstance(q.get("text"), str) or not q["text"].strip():
                self.fail(f"{where}.text", "the question to read out is required")
            if kind not in QUESTION_TYPES:
                self.fail(f"{where}.type", f"must be one of {', '.join(QUESTION_TYPES)}")
            if kind == "choice":
                opts = q.get("options")
                if not isinstance(opts, list) or not opts or not all(isinstance(o, str) and o for o in opts):
                    self.fail(f"{where}.options", "a choice question needs a list of options")
                else:
                    options[str(key)] = opts
            elif "options" in q:
                self.fail(f"{where}.options", "only choice questions have options")
            if set(q) - {"key", "text", "type", "options"}:
                self.fail(where, f"unknown keys {sorted(set(q) - {'key', 'text', 'type', 'options'})}")
            if isinstance(key, str):
                types.setdefault(key, str(kind))
        if not isinstance(rules, list):
            self.fail("script.qualify", "must be a list of rules")
            rules = []
        for i, rule in enumerate(rules):
            self._rule(f"script.qualify[{i}]", rule, types, options)
        return {"questions": questions, "qualify": rules}

    def _rule(self, where: str, rule: Any, types: dict[str, str], options: dict[str, list]) -> None:
        if not isinstance(rule, dict) or rule.get("key") not in types:
            self.fail(where, "each rule names the key of a question: {\"key\": ..., \"equals\"|\"in\"|\"min\"|\"max\": ...}")
            return
        operators = [k for k in rule if k != "key"]
        if len(operators) != 1 or operators[0] not in RULE_OPERATORS:
            self.fail(where, f"give exactly one of {', '.join(RULE_OPERATORS)}")
            return
        op, operand, kind = operators[0], rule[operators[0]], types[rule["key"]]
        if op in ("min", "max") and (kind != "number" or not _number(operand)):
            self.fail(where, f"{op} needs a number question and a number")
        elif op == "in" and (not isinstance(operand, list) or not operand):
            self.fail(where, "in needs a non-empty list of accepted answers")
        elif kind == "choice" and rule["key"] in options:
            given = operand if op == "in" else [operand]
            missing = [o for o in given if o not in options[rule["key"]]]
            if missing:
                self.fail(where, f"{missing} are not options of {rule['key']!r}")

    def retry_rules(self, value: Any, current: dict[str, Any]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail("retry_rules", f"must be an object keyed by outcome ({', '.join(RETRY_OUTCOMES)})")
            return None
        merged = {k: dict(v) for k, v in current.items()}
        for outcome, rule in value.items():
            where = f"retry_rules.{outcome}"
            if outcome not in RETRY_OUTCOMES:
                self.fail(where, f"not an outcome; use {', '.join(RETRY_OUTCOMES)}")
                continue
            if not isinstance(rule, dict) or set(rule) - {"delay_s", "max_attempts"}:
                self.fail(where, "must be {\"delay_s\": seconds, \"max_attempts\": n}")
                continue
            rule = {**merged.get(outcome, {}), **rule}
            if not _integer(rule.get("delay_s")) or rule["delay_s"] < 0:
                self.fail(f"{where}.delay_s", "must be a whole number of seconds, 0 or more")
            if not _integer(rule.get("max_attempts")) or rule["max_attempts"] < 1:
                self.fail(f"{where}.max_attempts", "must be a whole number, 1 or more")
            merged[outcome] = rule
        return merged

    def territories(self, value: Any) -> dict[str, Any] | None:
        from campaigns.leads import US_STATES

        if not isinstance(value, dict):
            self.fail("territories", "must be an object: postal prefix or state -> {rep, email, webhook_url}")
            return None
        cleaned = {}
        for key, rep in value.items():
            where = f"territories.{key}"
            area = str(key).strip().upper()
            if not (area in US_STATES or re.fullmatch(r"[0-9A-Z]{1,10}", area)) or area.isalpha() and len(area) != 2:
                self.fail(where, "the key is a US state (NY) or a postal code prefix (100)")
            if not isinstance(rep, dict) or set(rep) - {"rep", "email", "webhook_url"}:
                self.fail(where, "must be {\"rep\": name, \"email\": address, \"webhook_url\": optional}")
                continue
            if not isinstance(rep.get("rep"), str) or not rep["rep"].strip():
                self.fail(f"{where}.rep", "the field sales rep's name is required")
            if not isinstance(rep.get("email"), str) or not _EMAIL.match(rep["email"]):
                self.fail(f"{where}.email", "a valid email address is required")
            url = rep.get("webhook_url")
            if url is not None and not (isinstance(url, str) and re.match(r"^https?://\S+$", url)):
                self.fail(f"{where}.webhook_url", "must be an http(s) URL")
            cleaned[area] = rep
        return cleaned


def _check(session: Session, campaign: Campaign | None, values: dict[str, Any], region: str) -> dict[str, Any]:
    """Return the checked, normalised settings to apply; raise CampaignError listing every problem."""
    c = _Checker(region)
    unknown = set(values) - set(SETTINGS)
    for name in sorted(unknown):
        c.fail(name, "not a campaign setting")
    out: dict[str, Any] = {}
    current = (lambda name, default=None: getattr(campaign, name) if campaign is not None else default)
    if "name" in values or campaign is None:
        name = values.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
            c.fail("name", "a name of 1 to 100 characters is required")
        else:
            out["name"] = name.strip()
            clash = session.scalar(select(Campaign.id).where(Campaign.name == out["name"]))
            if clash is not None and (campaign is None or clash != campaign.id):
                c.problems.append(("name", f"a campaign named {out['name']!r} exists already"))
    if "caller_id" in values or campaign is None:
        try:
            out["caller_id"] = to_e164(str(values.get("caller_id") or ""), region)
        except InvalidNumber as exc:
            c.fail("caller_id", f"a valid number the campaign calls from is required ({exc})")
    if "mode" in values and values["mode"] not in DIAL_MODES:
        c.fail("mode", f"must be one of {', '.join(DIAL_MODES)}")
    elif "mode" in values:
        out["mode"] = values["mode"]
    if "schedule" in values:
        out["schedule"] = c.schedule(values["schedule"], current("schedule", dict(DEFAULT_SCHEDULE)))
    if "script" in values:
        out["script"] = c.script(values["script"])
    if "retry_rules" in values:
        out["retry_rules"] = c.retry_rules(values["retry_rules"], current("retry_rules", DEFAULT_RETRY_RULES))
    for name, minimum, maximum in (("max_attempts", 1, 100), ("ring_timeout_s", MIN_RING_TIMEOUT_S, 600),
                                   ("wrap_up_s", 0, 3600)):
        if name in values:
            value = values[name]
            if not _integer(value) or not minimum <= value <= maximum:
                c.fail(name, f"must be a whole number from {minimum} to {maximum}")
            else:
                out[name] = value
    if "abandon_target" in values:
        value = values["abandon_target"]
        if not _number(value) or not 0 < value <= MAX_ABANDON_TARGET:
            c.fail("abandon_target", f"must be above 0 and at most {MAX_ABANDON_TARGET} (3% of live answers)")
        else:
            out["abandon_target"] = float(value)
    for name in ("amd", "requires_registry"):
        if name in values:
            if not isinstance(values[name], bool):
                c.fail(name, "must be true or false")
            else:
                out[name] = values[name]
    for name in COST_FIELDS:
        if name in values:
            if not _number(values[name]) or values[name] < 0:
                c.fail(name, "must be a number, 0 or more")
            else:
                out[name] = float(values[name])
    if "team" in values:
        if values["team"] is not None and (not isinstance(values["team"], str) or len(values["team"]) > 64):
            c.fail("team", "must be a team name of at most 64 characters, or null")
        else:
            out["team"] = values["team"] or None
    if "territories" in values:
        out["territories"] = c.territories(values["territories"])
    for name in ("machine_message", "abandon_message"):
        if name in values and values[name] is not None and not isinstance(values[name], str):
            c.fail(name, "must be text")
        elif name in values:
            out[name] = (values[name] or "").strip() or None
    action = values.get("machine_action", current("machine_action", "hang_up"))
    if action not in MACHINE_ACTIONS:
        c.fail("machine_action", f"must be one of {', '.join(MACHINE_ACTIONS)}")
    else:
        out["machine_action"] = action
        if action == "message" and not out.get("machine_message", current("machine_message")):
            c.fail("machine_message", "leaving a message on machines needs the message's text")
    if "agents" in values:
        out["agents"] = _agent_ids(session, values["agents"], c)
    _check_abandon_message(campaign, values, out, c)
    if c.problems:
        raise CampaignError(c.problems, 409 if all("exists already" in m for _, m in c.problems) else 400)
    return out


def _check_abandon_message(campaign: Campaign | None, values: dict[str, Any], out: dict[str, Any],
                           c: _Checker) -> None:
    if "name" not in out and campaign is None or "caller_id" not in out and campaign is None:
        return  # name or number already refused
    name = out.get("name", campaign.name if campaign else "")
    caller_id = out.get("caller_id", campaign.caller_id if campaign else "")
    message = out.get("abandon_message") if "abandon_message" in values else None
    if message is None and campaign is not None and "abandon_message" not in values:
        old = campaign.abandon_message
        if old and old != default_abandon_message(campaign.name, campaign.caller_id):
            message = old  # a message the supervisor wrote: keep it, and check it still names the number
    if message is None:
        out["abandon_message"] = default_abandon_message(name, caller_id)
        return
    national = str(phonenumbers.parse(caller_id).national_number)
    if national not in re.sub(r"\D", "", message):
        c.fail("abandon_message", f"the message must give the number to call back ({caller_id})")
    out["abandon_message"] = message


def _agent_ids(session: Session, logins: Any, c: _Checker) -> list[int] | None:
    if isinstance(logins, str):
        logins = [x.strip() for x in logins.split(",") if x.strip()]
    if not isinstance(logins, list) or not all(isinstance(x, str) for x in logins):
        c.fail("agents", "must be a list of agent logins")
        return None
    found = dict(session.execute(select(Agent.login, Agent.id).where(Agent.login.in_(logins))).all())
    missing = [x for x in logins if x not in found]
    if missing:
        c.fail("agents", f"no agent with login {', '.join(map(repr, missing))}")
        return None
    return list(dict.fromkeys(found[x] for x in logins))


def _apply(campaign: Campaign, settings: dict[str, Any]) -> None:
    for name, value in settings.items():
        if name == "agents":
            campaign.agents = [CampaignAgent(agent_id=agent_id) for agent_id in value]
        else:
            setattr(campaign, name, value)


def create_campaign(session: Session, values: dict[str, Any], region: str = "US") -> Campaign:
    """Create a draft campaign from `values` (name and caller_id required; defaults for the rest).

    Raises:
        CampaignError: listing every refused setting (400), or 409 when only the name is taken.
    """
    settings = _check(session, None, values, region)
    campaign = Campaign(name=settings.pop("name"), caller_id=settings.pop("caller_id"))
    _apply(campaign, settings)
    session.add(campaign)
    session.flush()
    return campaign


def update_campaign(session: Session, campaign: Campaign, values: dict[str, Any], region: str = "US") -> Campaign:
    """Change some settings of a campaign; nothing changes when any of them is refused.

    Raises:
        CampaignError: listing every refused setting.
    """
    settings = _check(session, campaign, values, region)
    if "agents" in settings:
        # replace the membership rows before adding the new ones (same primary keys)
        campaign.agents.clear()
        session.flush()
    _apply(campaign, settings)
    session.flush()
    return campaign


def find_campaign(session: Session, ref: str | int) -> Campaign:
    """Return the campaign with id or name `ref`.

    Raises:
        FlowError: 404 when there is none.
    """
    campaign = None
    if isinstance(ref, int) or str(ref).isdigit():
        campaign = session.get(Campaign, int(ref))
    if campaign is None:
        campaign = session.scalar(select(Campaign).where(Campaign.name == str(ref)))
    if campaign is None:
        raise FlowError(f"no campaign {ref!r}", 404)
    return campaign


def campaign_dict(campaign: Campaign, logins: dict[int, str] | None = None) -> dict[str, Any]:
    data = {name: getattr(campaign, name) for name in SETTINGS if name != "agents"}
    data.update(id=campaign.id, status=campaign.status, created_at=campaign.created_at.isoformat(),
                agents=[(logins or {}).get(a.agent_id, a.agent_id) for a in campaign.agents])
    return data


# ---------------------------------------------------------------- screening


def _normalised(answer: Any, kind: str) -> Any:
    if kind == "yes_no" and isinstance(answer, str):
        return {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}.get(answer.lower())
    if kind == "number" and isinstance(answer, str):
        try:
            return float(answer)
        except ValueError:
            return None
    return answer


def qualifies(script: dict[str, Any], answers: dict[str, Any]) -> bool:
    """Return True when the answers meet every rule of the script's `qualify` list (no rules: True).

    A rule whose question was not answered does not hold. Yes/no answers may be booleans or "yes"/"no";
    number answers may be numbers or numeric strings.
    """
    kinds = {q.get("key"): q.get("type") for q in script.get("questions", [])}
    for rule in script.get("qualify", []):
        key = rule.get("key")
        kind = kinds.get(key, "text")
        if key not in answers or answers[key] is None:
            return False
        answer = _normalised(answers[key], kind)
        if "equals" in rule and answer != _normalised(rule["equals"], kind):
            return False
        if "in" in rule and answer not in [_normalised(x, kind) for x in rule["in"]]:
            return False
        for op, holds in (("min", lambda a, b: a >= b), ("max", lambda a, b: a <= b)):
            if op in rule and (not _number(answer) or not holds(answer, rule[op])):
                return False
    return True
