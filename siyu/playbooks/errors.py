"""Playbook errors."""

from __future__ import annotations

from typing import Any

from siyu.errors import Conflict, InvalidInput, NotFound


class InvalidPlaybook(InvalidInput):
    """A playbook file that cannot be applied; ``details`` lists each problem with the file,
    the place (``step``: e.g. ``steps[2].send.template``) and the reason."""

    code = "invalid_playbook"

    def __init__(self, file: str, problems: list[dict[str, Any]]) -> None:
        first = problems[0] if problems else {"step": "", "reason": "invalid"}
        where = f" at {first['step']}" if first.get("step") else ""
        super().__init__(f"{file}{where}: {first['reason']}",
                         details=[{"file": file, **p} for p in problems])
        self.file = file
        self.problems = problems


class PlaybookNotFound(NotFound):
    code = "playbook_not_found"


class PlaybookConflict(Conflict):
    code = "playbook_conflict"


class InvalidPolicy(InvalidInput):
    code = "invalid_policy"
