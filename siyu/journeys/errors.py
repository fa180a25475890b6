"""Errors of the journeys domain."""

from __future__ import annotations

from siyu.errors import InvalidInput, NotFound


class InvalidScenarioFile(InvalidInput):
    """A scenario or stage file that cannot be applied; nothing was changed."""

    code = "invalid_scenario_file"


class ScenarioNotFound(NotFound):
    code = "scenario_not_found"
