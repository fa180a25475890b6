"""VOC errors."""

from __future__ import annotations

from siyu.errors import Forbidden, InvalidInput, NotFound


class SurveyNotFound(NotFound):
    code = "survey_not_found"


class ModelMissing(InvalidInput):
    code = "voc_model_missing"


class LinkRefused(Forbidden):
    """A survey link that is forged, expired or for another survey."""

    code = "survey_link_refused"


__all__ = ["InvalidInput", "LinkRefused", "ModelMissing", "SurveyNotFound"]
