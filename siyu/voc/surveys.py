"""Surveys: definitions, imported responses, per-recipient signed links and the answers a
customer gives on the survey page. Functions take an explicit session and never commit.

Scales: CSAT 1–5, NPS 0–10, CES 1–7 (7 = easiest), a rating question 1–5 unless its values
need 1–7 or 0–10. ``performance`` of a question is its mean on a 0–1 scale.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.errors import SiyuError
from siyu.voc.errors import InvalidInput, LinkRefused, SurveyNotFound
from siyu.voc.models import QUESTION_KINDS, Survey, SurveyAnswer, SurveyQuestion, SurveyResponse

RESERVED = ("response_id", "customer_id", "submitted_at")
NAME_MAX = 80
SCALE_KINDS = ("nps", "csat", "ces", "rating")
LINK_SALT = "siyu.voc.survey-link"
LINK_MAX_AGE = 30 * 24 * 3600
MAX_IMPORT_ERRORS = 200


def scale_of(kind: str, values: Sequence[float] = ()) -> tuple[int, int]:
    """The scale of a numeric question: fixed for CSAT/NPS/CES, the smallest common scale
    (1–5, 1–7, 0–10) holding ``values`` for a rating."""
    fixed = QUESTION_KINDS.get(kind)
    if kind != "rating" and fixed is not None:
        return fixed
    hi = max(values, default=5)
    lo = min(values, default=1)
    if lo >= 1 and hi <= 5:
        return (1, 5)
    if lo >= 1 and hi <= 7:
        return (1, 7)
    return (0, 10)


# -- definitions ------------------------------------------------------------------------------


@dataclass
class QuestionSpec:
    key: str
    kind: str
    title: str | None = None
    factor: str | None = None
    options: list[str] = field(default_factory=list)
    required: bool = False
    scale: tuple[int, int] | None = None


def get_survey(session: Session, name: str) -> Survey:
    survey = session.scalar(select(Survey).where(Survey.name == name))
    if survey is None:
        raise SurveyNotFound(f"no survey named {name!r}", details=[
            {"field": "survey", "reason": "not found"}])
    return survey


def questions(session: Session, survey_id: int) -> list[SurveyQuestion]:
    return list(session.scalars(select(SurveyQuestion).where(
        SurveyQuestion.survey_id == survey_id).order_by(SurveyQuestion.position,
                                                       SurveyQuestion.id)))


def _check_name(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > NAME_MAX:
        raise InvalidInput(f"{what} must be 1-{NAME_MAX} characters", details=[
            {"field": what, "reason": f"must be 1-{NAME_MAX} characters"}])
    return value


def create_survey(session: Session, *, name: str, title: str | None = None,
                  questions_: Sequence[QuestionSpec] = (), touchpoint: str | None = None,
                  journey_step: str | None = None, intro: str | None = None) -> Survey:
    """Create a survey with its questions (names unique; kinds from ``QUESTION_KINDS``)."""
    name = _check_name(name, "name")
    if session.scalar(select(Survey.id).where(Survey.name == name)) is not None:
        from siyu.errors import Conflict

        raise Conflict(f"a survey named {name!r} exists", details=[
            {"field": "name", "reason": "taken"}])
    errors = []
    seen: set[str] = set()
    for i, q in enumerate(questions_):
        if q.kind not in QUESTION_KINDS:
            errors.append({"field": f"questions[{i}].kind",
                           "reason": f"must be one of {', '.join(QUESTION_KINDS)}"})
        if not q.key.strip() or len(q.key) > NAME_MAX or q.key in RESERVED or q.key in seen:
            errors.append({"field": f"questions[{i}].key",
                           "reason": "must be unique, 1-80 characters and not reserved"})
        if q.kind in ("single", "multi") and len(q.options) < 2:
            errors.append({"field": f"questions[{i}].options", "reason": "needs 2+ options"})
        seen.add(q.key)
    if errors:
        raise InvalidInput(f"survey {name!r}: {errors[0]['field']} {errors[0]['reason']}",
                           details=errors)
    survey = Survey(name=name, title=title or name, touchpoint=touchpoint,
                    journey_step=journey_step, intro=intro)
    session.add(survey)
    session.flush()
    for i, q in enumerate(questions_):
        lo, hi = q.scale or (scale_of(q.kind) if QUESTION_KINDS[q.kind] else (None, None))
        session.add(SurveyQuestion(survey_id=survey.id, key=q.key, kind=q.kind,
                                   title=q.title or q.key, factor=q.factor,
                                   options=list(q.options), scale_min=lo, scale_max=hi,
                                   position=i, required=q.required))
    session.flush()
    return survey


def ensure_desk_csat(session: Session) -> Survey:
    """The service desk's after-conversation satisfaction as a survey (created once)."""
    survey = session.scalar(select(Survey).where(Survey.name == "service_csat"))
    if survey is not None:
        return survey
    return create_survey(session, name="service_csat", title="服务满意度", touchpoint="客服会话",
                         journey_step="售后", questions_=[
                             QuestionSpec("csat", "csat", "您对本次服务满意吗？", required=True),
                             QuestionSpec("ces", "ces", "这次解决问题容易吗？"),
                             QuestionSpec("comment", "text", "还有什么想告诉我们的？")])


# -- import -----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    survey: str
    created: bool
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    questions: list[dict[str, Any]] = field(default_factory=list)
    feedback: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"survey": self.survey, "created": self.created, "rows": self.rows,
                "added": self.added, "duplicates": self.duplicates,
                "rejected": len({e["line"] for e in self.errors}),
                "errors": self.errors[:MAX_IMPORT_ERRORS], "questions": self.questions,
                "feedback": self.feedback}


def parse_scales(items: Sequence[str]) -> dict[str, str]:
    """``["nps_q=nps", "effort=ces"]`` → ``{"nps_q": "nps", "effort": "ces"}``."""
    out: dict[str, str] = {}
    for item in items:
        col, sep, kind = item.partition("=")
        if not sep or not col.strip() or kind.strip() not in SCALE_KINDS:
            raise InvalidInput(f"--scale {item!r}: use COLUMN=nps|csat|ces|rating", details=[
                {"field": "scale", "reason": f"bad value {item}"}])
        out[col.strip()] = kind.strip()
    return out


def _number(raw: str) -> float | None:
    try:
        v = float(raw)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _parse_ts(raw: str) -> dt.datetime | None:
    raw = raw.strip()
    try:
        if len(raw) == 10:
            d = dt.date.fromisoformat(raw)
            return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
        ts = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)


def import_responses(session: Session, data: bytes | str, *, survey: str,
                     scales: Mapping[str, str] | None = None, source: str = "file",
                     classify_text: bool = True) -> ImportReport:
    """Import one response per row, one column per question (see the module docstring).

    The survey is created when needed: each numeric column becomes a rating question named by
    its header (``--scale`` or a header named nps/csat/ces sets its scale), each other column
    free text. ``response_id`` makes a re-import idempotent (a known id is a duplicate),
    ``customer_id`` links to the customer with that brand id, ``submitted_at`` is ISO 8601.
    Bad rows are reported with their line and reason; good rows land.
    """
    scales = dict(scales or {})
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{source} is not UTF-8 (byte {exc.start})", details=[
                {"field": "file", "reason": "not UTF-8"}]) from exc
    reader = csv.DictReader(io.StringIO(data, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    rows = [{k: (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    columns = [h for h in header if h and h not in RESERVED]
    if not columns:
        raise InvalidInput(f"{source} has no question columns", details=[
            {"field": "header", "reason": "only reserved columns"}])
    unknown = sorted(set(scales) - set(columns))
    if unknown:
        raise InvalidInput(f"--scale names columns the file lacks: {', '.join(unknown)}",
                           details=[{"field": "scale", "reason": f"no column {c}"}
                                    for c in unknown])
    existing = session.scalar(select(Survey).where(Survey.name == survey))
    report = ImportReport(survey=survey, created=existing is None, rows=len(rows))
    if existing is None:
        existing = create_survey(session, name=survey, questions_=_infer_questions(
            session, columns, rows, scales))
    qs = {q.key: q for q in questions(session, existing.id)}
    missing = [c for c in columns if c not in qs]
    if missing:
        raise InvalidInput(f"survey {survey!r} has no questions {', '.join(missing)}",
                           details=[{"field": c, "reason": "not a question of the survey"}
                                    for c in missing])
    report.questions = [{"key": q.key, "kind": q.kind, "factor": q.factor,
                         "scale": [q.scale_min, q.scale_max] if q.scale_min is not None
                         else None} for q in qs.values() if q.key in columns]

    known_ids = {i for i in session.scalars(select(SurveyResponse.external_id).where(
        SurveyResponse.survey_id == existing.id, SurveyResponse.external_id.is_not(None)))
        if i is not None}
    customers: dict[str, int | None] = {}
    texts: list[tuple[int, str, SurveyQuestion, int | None, dt.datetime | None]] = []
    for line, row in enumerate(rows, start=2):
        errs = _row_errors(session, row, line, columns, qs, customers, known_ids)
        if errs is None:
            report.duplicates += 1
            continue
        if errs:
            report.errors.extend(errs)
            continue
        rid = row.get("response_id") or None
        if rid:
            known_ids.add(rid)
        submitted = _parse_ts(row["submitted_at"]) if row.get("submitted_at") else None
        customer_id = customers.get(row["customer_id"]) if row.get("customer_id") else None
        resp = SurveyResponse(survey_id=existing.id, customer_id=customer_id, external_id=rid,
                              source="import", touchpoint=existing.touchpoint,
                              submitted_at=submitted or dt.datetime.now(dt.UTC),
                              completed=True)
        session.add(resp)
        session.flush()
        for col in columns:
            raw = row.get(col, "")
            if raw == "":
                continue
            q = qs[col]
            if q.scale_min is not None:
                session.add(SurveyAnswer(response_id=resp.id, question_id=q.id,
                                         value_num=float(raw)))
            else:
                session.add(SurveyAnswer(response_id=resp.id, question_id=q.id, value_text=raw))
                if q.kind == "text":
                    texts.append((resp.id, raw, q, customer_id, resp.submitted_at))
        report.added += 1
    session.flush()
    if classify_text and texts:
        report.feedback = _classify_answers(session, texts)
    return report


def _infer_questions(session: Session, columns: Sequence[str], rows: Sequence[dict[str, str]],
                     scales: Mapping[str, str]) -> list[QuestionSpec]:
    from siyu.voc.service import factor_tree

    names = {n.name for n in factor_tree(session).nodes}
    specs = []
    for col in columns:
        values = [r.get(col, "") for r in rows if r.get(col, "")]
        nums = [_number(v) for v in values]
        numeric = bool(values) and sum(n is not None for n in nums) >= 0.8 * len(values)
        kind = scales.get(col) or (col.lower() if col.lower() in ("nps", "csat", "ces") else None)
        if kind is None:
            kind = "rating" if numeric else "text"
        scale = scale_of(kind, [n for n in nums if n is not None]) if kind != "text" else None
        specs.append(QuestionSpec(col, kind, col, factor=col if col in names else None,
                                  scale=scale))
    return specs


def _row_errors(session: Session, row: dict[str, str], line: int, columns: Sequence[str],
                qs: Mapping[str, SurveyQuestion], customers: dict[str, int | None],
                known_ids: set[str]) -> list[dict[str, Any]] | None:
    """The row's errors ([] when good), or ``None`` for a response already imported."""
    from siyu.customers import service as customer_service

    errs: list[dict[str, Any]] = []
    rid = row.get("response_id", "")
    if rid:
        if len(rid) > 80:
            errs.append({"line": line, "field": "response_id", "reason": "longer than 80"})
        elif rid in known_ids:
            return None
    cid = row.get("customer_id", "")
    if cid:
        if cid not in customers:
            try:
                customers[cid] = customer_service.find_by_identity(session, "external_id", cid)
            except SiyuError:
                customers[cid] = None
        if customers[cid] is None:
            errs.append({"line": line, "field": "customer_id",
                         "reason": f"no customer with brand id {cid}"})
    if row.get("submitted_at") and _parse_ts(row["submitted_at"]) is None:
        errs.append({"line": line, "field": "submitted_at", "reason": "not an ISO 8601 date"})
    answered = 0
    for col in columns:
        raw = row.get(col, "")
        if raw == "":
            continue
        answered += 1
        q = qs[col]
        if q.scale_min is not None and q.scale_max is not None:
            v = _number(raw)
            if v is None:
                errs.append({"line": line, "field": col, "reason": f"not a number: {raw[:20]}"})
            elif not q.scale_min <= v <= q.scale_max:
                errs.append({"line": line, "field": col,
                             "reason": f"{raw} outside {q.scale_min}-{q.scale_max}"})
        elif len(raw) > 2000:
            errs.append({"line": line, "field": col, "reason": "longer than 2000 characters"})
    if not answered:
        errs.append({"line": line, "field": "row", "reason": "no answers"})
    return errs


def _classify_answers(session: Session, texts: Sequence[tuple[int, str, SurveyQuestion,
                                                               int | None, Any]]) -> int:
    """Classify free-text answers into feedback (when a sentiment model exists)."""
    from siyu.voc import service

    clf = service.classifier(session)
    if clf.sentiment_model is None:
        return 0
    results = clf.classify_many([t[1] for t in texts])
    for (resp_id, text, q, customer_id, ts), res in zip(texts, results, strict=True):
        service.record_feedback(session, source="survey", source_ref=f"{resp_id}:{q.id}",
                                text=text, customer_id=customer_id, response_id=resp_id,
                                ts=ts, classified=res)
    return len(texts)


# -- signed links and the survey page ---------------------------------------------------------


def _serializer(secret: str) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(secret, salt=LINK_SALT)


def link_secret(settings: Any) -> str:
    """The key that signs survey links: the auth domain's per-purpose key when available,
    else the install secret (salted per purpose by the serializer)."""
    try:
        from siyu.auth import secrets as auth_secrets  # type: ignore[attr-defined]

        key = auth_secrets.purpose_key(settings, "survey-link")
        return key.hex() if isinstance(key, bytes) else str(key)
    except (ImportError, AttributeError):
        return str(settings.secret_key.get_secret_value())


def sign_link(settings: Any, survey: Survey, *, customer_id: int | None = None,
              touchpoint: str | None = None) -> str:
    """A token for one recipient: opening it twice continues the same response, and it
    can complete one response only."""
    payload = {"s": survey.id, "n": secrets.token_urlsafe(12), "c": customer_id,
               "t": touchpoint}
    return str(_serializer(link_secret(settings)).dumps(payload))


@dataclass(frozen=True)
class Link:
    survey_id: int
    nonce: str
    customer_id: int | None
    touchpoint: str | None


def read_link(settings: Any, token: str, *, max_age: int = LINK_MAX_AGE) -> Link:
    """Verify a survey token; forged, altered and expired tokens are refused."""
    from itsdangerous import BadSignature, SignatureExpired

    try:
        data = _serializer(link_secret(settings)).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkRefused("这个问卷链接已过期", details=[
            {"field": "token", "reason": "expired"}]) from exc
    except BadSignature as exc:
        raise LinkRefused("问卷链接无效", details=[{"field": "token", "reason": "bad signature"}]
                          ) from exc
    return Link(int(data["s"]), str(data["n"]), data.get("c"), data.get("t"))


def response_for_link(session: Session, link: Link, *, create: bool) -> SurveyResponse | None:
    resp = session.scalar(select(SurveyResponse).where(
        SurveyResponse.survey_id == link.survey_id, SurveyResponse.link_nonce == link.nonce))
    if resp is None and create:
        resp = SurveyResponse(survey_id=link.survey_id, customer_id=link.customer_id,
                              link_nonce=link.nonce, source="link", touchpoint=link.touchpoint,
                              completed=False)
        session.add(resp)
        session.flush()
    return resp


def save_answer(session: Session, link: Link, key: str, value: Any) -> SurveyResponse:
    """Store one answer as the customer goes (replacing an earlier answer to the question);
    a completed response takes no more answers."""
    resp = response_for_link(session, link, create=True)
    assert resp is not None
    if resp.completed:
        raise LinkRefused("您已经提交过这份问卷，感谢您的反馈", details=[
            {"field": "token", "reason": "already answered"}], status_code=409)
    q = session.scalar(select(SurveyQuestion).where(SurveyQuestion.survey_id == link.survey_id,
                                                    SurveyQuestion.key == key))
    if q is None:
        raise InvalidInput(f"no question {key!r}", details=[{"field": key,
                                                               "reason": "unknown question"}])
    num, text = _answer_value(q, value)
    ans = session.scalar(select(SurveyAnswer).where(SurveyAnswer.response_id == resp.id,
                                                    SurveyAnswer.question_id == q.id))
    if ans is None:
        session.add(SurveyAnswer(response_id=resp.id, question_id=q.id, value_num=num,
                                 value_text=text))
    else:
        ans.value_num, ans.value_text = num, text
    session.flush()
    return resp


def _answer_value(q: SurveyQuestion, value: Any) -> tuple[float | None, str | None]:
    if q.scale_min is not None and q.scale_max is not None:
        v = _number(str(value))
        if v is None or not q.scale_min <= v <= q.scale_max or v != int(v):
            raise InvalidInput(f"{q.key}: choose {q.scale_min}-{q.scale_max}", details=[
                {"field": q.key, "reason": f"must be a whole number {q.scale_min}-"
                                           f"{q.scale_max}"}])
        return v, None
    if q.kind in ("single", "multi"):
        chosen = value if isinstance(value, list) else [value]
        chosen = [str(c) for c in chosen]
        if not chosen or any(c not in q.options for c in chosen) or (
                q.kind == "single" and len(chosen) != 1):
            raise InvalidInput(f"{q.key}: not one of the options", details=[
                {"field": q.key, "reason": "not an option"}])
        return None, "|".join(chosen)
    text = str(value).strip()
    if len(text) > 2000:
        raise InvalidInput(f"{q.key}: too long", details=[
            {"field": q.key, "reason": "longer than 2000 characters"}])
    return None, text


def submit(session: Session, link: Link) -> SurveyResponse:
    """Complete the response of a link (once); required questions must be answered. A
    known customer's completed response earns points once (:func:`siyu.points.earn.for_survey`,
    ``SIYU_POINTS_SURVEY_ANSWER``)."""
    resp = response_for_link(session, link, create=True)
    assert resp is not None
    if resp.completed:
        raise LinkRefused("您已经提交过这份问卷，感谢您的反馈", details=[
            {"field": "token", "reason": "already answered"}], status_code=409)
    answered = set(session.scalars(select(SurveyAnswer.question_id).where(
        SurveyAnswer.response_id == resp.id)))
    missing = [q.key for q in questions(session, link.survey_id)
               if q.required and q.id not in answered]
    if missing:
        raise InvalidInput("请先回答必答题", details=[{"field": k, "reason": "required"}
                                                     for k in missing])
    resp.completed = True
    resp.submitted_at = dt.datetime.now(dt.UTC)
    session.flush()
    texts = [(resp.id, a.value_text, q, resp.customer_id, resp.submitted_at)
             for a, q in session.execute(select(SurveyAnswer, SurveyQuestion).join(
                 SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id).where(
                 SurveyAnswer.response_id == resp.id, SurveyQuestion.kind == "text"))
             if a.value_text]
    if texts:
        _classify_answers(session, texts)  # type: ignore[arg-type]
    from siyu.points import earn

    survey = session.get(Survey, resp.survey_id)
    earn.for_survey(session, resp.customer_id, resp.id, at=resp.submitted_at,
                    survey_title=survey.title if survey is not None else None)
    return resp


def answers_of(session: Session, response_id: int) -> dict[str, Any]:
    rows = session.execute(select(SurveyQuestion.key, SurveyAnswer.value_num,
                                  SurveyAnswer.value_text).join(
        SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id).where(
        SurveyAnswer.response_id == response_id))
    return {k: (n if n is None or n != int(n) else int(n)) if t is None else t
            for k, n, t in rows}


def response_count(session: Session, survey_id: int, *, completed: bool = True) -> int:
    return int(session.scalar(select(func.count()).select_from(SurveyResponse).where(
        SurveyResponse.survey_id == survey_id, SurveyResponse.completed.is_(completed))) or 0)


def list_responses(session: Session, name: str, *, page: int = 1, per_page: int = 50
                   ) -> dict[str, Any]:
    """One page of ``name``'s completed responses, newest first, with their answers."""
    survey = get_survey(session, name)
    where = (SurveyResponse.survey_id == survey.id, SurveyResponse.completed.is_(True))
    total = int(session.scalar(select(func.count()).select_from(SurveyResponse)
                               .where(*where)) or 0)
    rows = session.scalars(select(SurveyResponse).where(*where).order_by(
        SurveyResponse.submitted_at.desc(), SurveyResponse.id.desc())
        .offset((page - 1) * per_page).limit(per_page)).all()
    return {"survey": survey.name, "total": total, "page": page, "per_page": per_page,
            "items": [{"id": r.id, "customer_id": r.customer_id, "external_id": r.external_id,
                       "source": r.source, "touchpoint": r.touchpoint,
                       "submitted_at": r.submitted_at.isoformat() if r.submitted_at else None,
                       "answers": answers_of(session, r.id)} for r in rows]}
