"""The demo brand's knowledge base (禾源良品): 36 intents with examples and answer templates,
FAQ entries and keyword rules, from ``data/demo_kb.json``; trained so the bot works at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.kb import service
from siyu.kb.models import FaqEntry, Intent, IntentExample, KeywordRule

DATA = Path(__file__).resolve().parent / "data" / "demo_kb.json"


def load_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text("utf-8"))
    return data


def seed_demo_kb(session: Session, *, train: bool = True) -> service.TrainReport | None:
    """Store the demo knowledge base into an empty one and train the intent model."""
    if session.scalar(select(func.count()).select_from(Intent)):
        return None
    data = load_data()
    for item in data["intents"]:
        intent = Intent(name=item["name"], title=item["title"], answer=item.get("answer") or None,
                        action=item.get("action"), handoff=bool(item.get("handoff")),
                        skill_group=item.get("skill_group"))
        session.add(intent)
        session.flush()
        session.add_all(IntentExample(intent_id=intent.id, text=t) for t in item["examples"])
    for entry in data["faq"]:
        session.add(FaqEntry(question=entry["question"], variants=entry.get("variants", []),
                             answer=entry["answer"]))
    for rule in data["keyword_rules"]:
        session.add(KeywordRule(pattern=rule["pattern"], match=rule.get("match", "contains"),
                                reply=rule.get("reply"), handoff=bool(rule.get("handoff")),
                                priority=int(rule.get("priority", 0)),
                                enabled=bool(rule.get("enabled", True))))
    session.flush()
    return service.train(session) if train else None
