"""Journeys: each customer's stage on the private-domain journey (加微 → 入群 → 留存 → 活跃 →
转化 → 售后) and the scenarios they are in, recognised from orders, events and what they
said; kept current as data arrives (see docs/journeys.md)."""

from siyu.journeys import schedule as _schedule

_schedule.register()
