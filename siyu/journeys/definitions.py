"""Reading and validating scenario and stage files (YAML or JSON), before anything is
written: a bad rule is reported with the scenario, the position and a caret, like segment
rules; an unknown intent, stage or scenario is reported the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from siyu.journeys.errors import InvalidScenarioFile
from siyu.segments.rules import (
    And,
    InScenario,
    Intent,
    Not,
    Or,
    Rule,
    RuleError,
    RuleSyntaxError,
    parse,
    to_text,
)
from siyu.segments.rules.registry import JOURNEY_STAGES

STAGE_CODES = {code for code, _ in JOURNEY_STAGES}
STAGE_BY_LABEL = {label: code for code, label in JOURNEY_STAGES}
_KEYS = {"name", "stage", "rule", "description", "tag", "status"}


@dataclass(frozen=True)
class ScenarioDef:
    name: str
    stage: str
    rule: Rule
    rule_text: str
    description: str | None
    tag: str | None
    status: str


def load_document(text: str, source: str) -> Any:
    try:
        if source.lower().endswith(".json"):
            return orjson.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, orjson.JSONDecodeError) as exc:
        raise InvalidScenarioFile(f"{source}: not valid YAML/JSON: {exc}",
                                  details={"file": source, "reason": "syntax"}) from None


def _fail(source: str, where: str, reason: str, **extra: Any) -> InvalidScenarioFile:
    return InvalidScenarioFile(f"{source}: {where}: {reason}; nothing was changed",
                               details={"file": source, "at": where, "reason": reason, **extra})


def stage_code(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value in STAGE_CODES else STAGE_BY_LABEL.get(value)


def walk(rule: Rule) -> Iterable[Rule]:
    """Every node of ``rule``, parents first."""
    yield rule
    if isinstance(rule, And | Or):
        for arg in rule.args:
            yield from walk(arg)
    elif isinstance(rule, Not):
        yield from walk(rule.arg)


def normalise_intents(rule: Rule, codes: Mapping[str, str]) -> Rule:
    """``rule`` with every intent written by its title replaced by its code."""
    if isinstance(rule, And | Or):
        return type(rule)(tuple(normalise_intents(a, codes) for a in rule.args))
    if isinstance(rule, Not):
        return Not(normalise_intents(rule.arg, codes))
    if isinstance(rule, Intent):
        return Intent(codes.get(rule.intent, rule.intent), rule.window)
    return rule


def _literal_position(text: str, value: str) -> int:
    for quote in ('"', "'"):
        pos = text.find(f"{quote}{value}{quote}")
        if pos >= 0:
            return pos
    return 0


def read_rule(text: Any, *, source: str, where: str, intents: Mapping[str, str],
              scenarios: set[str]) -> tuple[Rule, str]:
    """Parse a rule and check its intents and scenarios exist; (rule with intent codes,
    its canonical text)."""
    if not isinstance(text, str) or not text.strip():
        raise _fail(source, where, "rule must be rule text (a string)")
    try:
        rule = parse(text)
    except RuleError as exc:
        assert isinstance(exc, RuleSyntaxError)
        raise _fail(source, where, f"{exc.message} at position {exc.position}\n{exc.caret()}",
                    position=exc.position, caret=exc.caret(),
                    message_zh=exc.message_zh) from None
    for node in walk(rule):
        problem = None
        if isinstance(node, Intent) and node.intent not in intents:
            problem, value = f"unknown intent {node.intent!r}", node.intent
        elif isinstance(node, InScenario) and node.name not in scenarios:
            problem, value = f"unknown scenario {node.name!r}", node.name
        if problem:
            pos = _literal_position(text, value)
            err = RuleSyntaxError(problem, pos, text)
            raise _fail(source, where, f"{problem} at position {pos}\n{err.caret()}",
                        position=pos, caret=err.caret())
    rule = normalise_intents(rule, intents)
    return rule, to_text(rule)


def read_scenarios(data: Any, *, source: str, intents: Mapping[str, str],
                   known: set[str]) -> list[ScenarioDef]:
    """The scenarios of a file: one mapping, a list, or ``{"scenarios": [...]}``.
    ``intents`` maps intent codes and titles to codes; ``known`` names stored scenarios."""
    if isinstance(data, dict) and "scenarios" in data:
        data = data["scenarios"]
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise _fail(source, "file", "expected a scenario, a list of them or {scenarios: [...]}")
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    defined = known | {n.strip() for n in names if isinstance(n, str)}
    out: list[ScenarioDef] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"scenario {index + 1}"
        if not isinstance(item, dict):
            raise _fail(source, where, "expected a mapping with name, stage and rule")
        unknown = set(item) - _KEYS
        if unknown:
            raise _fail(source, where, f"unknown field {sorted(unknown)[0]!r}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 60:
            raise _fail(source, where, "name must be 1-60 characters")
        name = name.strip()
        where = f"scenario {name!r}"
        if name in seen:
            raise _fail(source, where, "the name appears twice in the file")
        seen.add(name)
        stage = stage_code(item.get("stage"))
        if stage is None:
            choices = ", ".join(f"{c} ({label})" for c, label in JOURNEY_STAGES)
            raise _fail(source, f"{where} stage", f"stage must be one of {choices}")
        rule, rule_text = read_rule(item.get("rule"), source=source, where=f"{where} rule",
                                    intents=intents, scenarios=defined - {name})
        tag = item.get("tag")
        if tag is not None and (not isinstance(tag, str) or not 0 < len(tag.strip()) <= 60):
            raise _fail(source, f"{where} tag", "tag must be 1-60 characters")
        status = item.get("status", "active")
        if status not in ("active", "paused"):
            raise _fail(source, f"{where} status", "status must be active or paused")
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            raise _fail(source, f"{where} description", "description must be text")
        out.append(ScenarioDef(name, stage, rule, rule_text, description,
                               tag.strip() if tag else None, status))
    return out


def read_stages(data: Any, *, source: str, intents: Mapping[str, str],
                scenarios: set[str]) -> list[tuple[str, Rule, str]]:
    """Stage rules of a file ``{"stages": [{"stage", "rule"}, ...]}``: every stage but the
    first (which holds for everyone else) needs a rule."""
    items = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise _fail(source, "file", "expected {stages: [{stage, rule}, ...]}")
    out: list[tuple[str, Rule, str]] = []
    for index, item in enumerate(items):
        where = f"stage {index + 1}"
        if not isinstance(item, dict) or set(item) - {"stage", "rule"}:
            raise _fail(source, where, "expected a mapping with stage and rule")
        stage = stage_code(item.get("stage"))
        if stage is None or stage == JOURNEY_STAGES[0][0]:
            raise _fail(source, where, "stage must be one of the journey's stages after "
                                       f"{JOURNEY_STAGES[0][1]} (which holds for everyone else)")
        if any(s == stage for s, _, _ in out):
            raise _fail(source, where, "the stage appears twice")
        rule, text = read_rule(item.get("rule"), source=source, where=f"{where} rule",
                               intents=intents, scenarios=scenarios)
        out.append((stage, rule, text))
    return out
