"""Saved segments: membership diffs, changes, snapshots, the refresh job."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import utcnow
from siyu.events.models import Order
from siyu.jobs import service as jobs
from siyu.jobs.models import Job
from siyu.segments import service
from siyu.segments.errors import InvalidRule, InvalidSegment, SegmentExists, SegmentNotFound
from siyu.segments.models import Segment, SegmentChange, SegmentMember, SegmentSnapshot
from tests.segments.conftest import DAY, NOW, Population


def _members(session: Session, segment_id: int) -> set[int]:
    return set(session.scalars(select(SegmentMember.customer_id)
                               .where(SegmentMember.segment_id == segment_id)))


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_create_computes_members_and_records_entries(db: Session,
                                                     population: Population) -> None:
    segment = service.create_segment(db, " 近30天下单 ", "orders(last 30d) >= 1",
                                     created_by="tester", now=NOW)
    assert segment.name == "近30天下单"
    assert segment.text == "orders(last 30d) >= 1"
    assert segment.rule == {"field": "orders", "window": {"last": 30, "unit": "d"},
                            "cmp": ">=", "value": 1}
    assert segment.size == 2 and segment.refreshed_at == NOW
    assert population.names(_members(db, segment.id)) == {"A", "B"}
    entered = service.entered_since(db, segment.id, 0)
    assert population.names([c.customer_id for c in entered]) == {"A", "B"}
    assert {c.at for c in entered} == {NOW}
    # The periodic refresh is scheduled for the start of the next hour bucket.
    job = db.scalar(select(Job).where(Job.name == "segments.refresh_all"))
    assert job is not None and job.run_at == NOW + DAY / 24
    assert job.dedup_key == f"segments.refresh_all:{(NOW + DAY / 24).isoformat()}"


def test_refresh_records_who_entered_and_left(db: Session, population: Population) -> None:
    segment = service.create_segment(db, "近30天下单", "orders(last 30d) >= 1",
                                     created_by="tester", now=NOW)
    first = service.entered_since(db, segment.id, 0)
    last_seen = first[-1].id
    # A day later B's order leaves the window, and C places a new one.
    db.add(Order(id="O-new", customer_id=population.ids["C"], ts=NOW + DAY / 2, amount=80.0,
                 status="paid"))
    db.flush()
    result = service.refresh_segment(db, segment.id, now=NOW + DAY)
    assert (result.size, result.entered, result.left) == (2, 1, 1)
    assert population.names(_members(db, segment.id)) == {"A", "C"}
    new = service.entered_since(db, segment.id, last_seen)
    assert [(population.names([c.customer_id]), c.kind, c.at) for c in new] == [
        ({"C"}, "entered", NOW + DAY)]
    left = service.changes(db, segment.id, kind="left")
    assert [(population.names([c.customer_id]), c.at) for c in left] == [({"B"}, NOW + DAY)]
    since = db.scalar(select(SegmentMember.since).where(
        SegmentMember.segment_id == segment.id,
        SegmentMember.customer_id == population.ids["A"]))
    assert since == NOW  # A stayed a member; their "since" is unchanged
    # Refreshing again with nothing new changes nothing but adds a snapshot.
    again = service.refresh_segment(db, segment.id, now=NOW + DAY)
    assert (again.size, again.entered, again.left) == (2, 0, 0)
    history = service.size_history(db, [segment.id])[segment.id]
    assert [(h["size"], h["entered"], h["left"]) for h in history] == [
        (2, 2, 0), (2, 1, 1), (2, 0, 0)]


def test_update_rule_applies_at_once_and_rename_checks_uniqueness(
        db: Session, population: Population) -> None:
    a = service.create_segment(db, "VIP", 'tier = "VIP"', created_by=None, now=NOW)
    service.create_segment(db, "北京", 'city = "北京"', created_by=None, now=NOW)
    assert population.names(_members(db, a.id)) == {"A", "D", "F"}
    service.update_segment(db, a.id, rule='tier = "VIP" and tag("VIP")', now=NOW)
    assert population.names(_members(db, a.id)) == {"A", "D"}
    assert a.text == 'tier = "VIP" and tag("VIP")'
    with pytest.raises(SegmentExists):
        service.update_segment(db, a.id, name="北京")
    assert db.get(Segment, a.id).name == "VIP"  # type: ignore[union-attr]


def test_refused_inputs_write_nothing(db: Session, population: Population) -> None:
    with pytest.raises(InvalidRule) as info:
        service.create_segment(db, "坏规则", "orders >= three", created_by=None, now=NOW)
    assert info.value.position == 10
    with pytest.raises(InvalidSegment):
        service.create_segment(db, "   ", "orders >= 1", created_by=None, now=NOW)
    with pytest.raises(InvalidSegment):
        service.create_segment(db, "x" * 101, "orders >= 1", created_by=None, now=NOW)
    service.create_segment(db, "一次", "orders >= 1", created_by=None, now=NOW)
    with pytest.raises(SegmentExists):
        service.create_segment(db, "一次", "orders >= 2", created_by=None, now=NOW)
    assert _count(db, Segment) == 1
    assert _count(db, SegmentChange) == 4  # the one good segment's A, B, C, F
    with pytest.raises(InvalidRule):
        service.read_rule(rule_json={"field": "orders", "cmp": ">=", "value": "3"})
    with pytest.raises(InvalidSegment):
        service.read_rule("orders >= 1", {"field": "tag", "value": "VIP"})


def test_delete_removes_history(db: Session, population: Population) -> None:
    segment = service.create_segment(db, "一次", "orders >= 1", created_by=None, now=NOW)
    service.delete_segment(db, segment.id)
    for model in (Segment, SegmentMember, SegmentChange, SegmentSnapshot):
        assert _count(db, model) == 0
    with pytest.raises(SegmentNotFound):
        service.delete_segment(db, segment.id)


def test_export_rows_mask_phones(db: Session, population: Population) -> None:
    segment = service.create_segment(db, "有手机", "has(phone)", created_by=None, now=NOW)
    rows = [r for batch in service.export_rows(db, segment.id, batch=2) for r in batch]
    ids = population.ids
    assert rows == [
        (ids["A"], "EXT-A", "客户A", "138****8001"),
        (ids["B"], "EXT-B", "客户B", "138****8002"),
        (ids["F"], "", "客户F", "138****8006"),
    ]


def test_refresh_job_refreshes_all_and_schedules_next(
        sessions: sessionmaker[Session], population: Population) -> None:
    import siyu.segments.tasks  # noqa: F401  (registers the handler)

    with sessions() as session:
        segment = service.create_segment(session, "近30天下单", "orders(last 30d) >= 1",
                                         created_by=None, now=NOW)
        service.request_refresh(session, now=NOW)
        service.request_refresh(session, now=NOW)  # same minute: one job
        session.commit()
        sid = segment.id
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 2
    # Both are due (NOW is in the past): the bucket create() scheduled and the request.
    summary = jobs.run_due(sessions, names={"segments.refresh_all"})
    assert (summary.done, summary.failed) == (2, 0)
    with sessions() as session:
        # Run at the real "now", long after NOW: every order has left the 30-day window.
        assert session.get(Segment, sid).size == 0  # type: ignore[union-attr]
        assert [c.kind for c in service.changes(session, sid, after_id=0)] == [
            "entered", "entered", "left", "left"]
        queued = session.scalars(select(Job).where(Job.status == "queued")).all()
        # Each run scheduled the next bucket; the dedup key made that one job.
        assert len(queued) == 1
        assert queued[0].run_at > utcnow()
        assert queued[0].dedup_key == f"segments.refresh_all:{queued[0].run_at.isoformat()}"
