"""Errors of the analytics domain."""

from siyu.errors import InvalidInput, NotFound


class ScoresNotComputed(NotFound):
    code = "scores_not_computed"


class InvalidClvRequest(InvalidInput):
    code = "invalid_clv_request"


class ClvFitFailed(InvalidInput):
    code = "clv_fit_failed"
