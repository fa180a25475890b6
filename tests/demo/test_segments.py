"""The demo brand's saved segments: real members at each moment of the score history."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics.config import ScoringConfig
from siyu.analytics.service import recompute_scores
from siyu.config import Settings
from siyu.demo.generator import seed_demo
from siyu.demo.segments import DEMO_SEGMENTS, refresh_demo_segments
from siyu.segments import service as segments
from siyu.segments.models import Segment, SegmentMember, SegmentSnapshot

NOW = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)
EARLIER = NOW - dt.timedelta(days=61)


def test_demo_segments_follow_the_score_history(sessions: sessionmaker[Session],
                                                database_url: str) -> None:
    settings = Settings(database_url=database_url, environment="test")
    seed_demo(sessions, settings, customers=2_000, seed=7, now=NOW)
    sizes_at: dict[dt.datetime, dict[str, int]] = {}
    for moment in (EARLIER, NOW):  # as the demo seed does at its month ends
        recompute_scores(sessions, now=moment, config=ScoringConfig())
        with sessions() as session:
            assert refresh_demo_segments(session, now=moment,
                                         timezone="Asia/Shanghai") == len(DEMO_SEGMENTS)
            session.commit()
            sizes_at[moment] = {
                name: segments.count_rule(session, rule, now=moment).count
                for name, rule in DEMO_SEGMENTS}

    with sessions() as session:
        saved = {s.name: s for s in session.scalars(select(Segment))}
        assert set(saved) == {name for name, _ in DEMO_SEGMENTS}
        for name, segment in saved.items():
            history = session.execute(
                select(SegmentSnapshot.at, SegmentSnapshot.size)
                .where(SegmentSnapshot.segment_id == segment.id)
                .order_by(SegmentSnapshot.at)).all()
            # one snapshot per moment, each the rule's count at that moment
            assert [size for _, size in history] == [sizes_at[EARLIER][name],
                                                     sizes_at[NOW][name]], name
            members = session.scalar(select(func.count()).select_from(SegmentMember)
                                     .where(SegmentMember.segment_id == segment.id))
            assert members == segment.size == sizes_at[NOW][name]
        # the demo has someone in every segment, and the sizes move between the moments
        assert all(size > 0 for size in sizes_at[NOW].values()), sizes_at[NOW]
        assert sizes_at[EARLIER] != sizes_at[NOW]
