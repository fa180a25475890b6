"""Customer intelligence: scores, CLV models, LTV/CAC and the dashboard.

Importing the package registers the after-ingest hook that keeps scores current
(:func:`siyu.analytics.schedule.register`).
"""

from siyu.analytics import schedule as _schedule

_schedule.register()
