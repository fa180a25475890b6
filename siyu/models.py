"""Imports every domain's models so the metadata (and Alembic) sees all tables."""

from siyu.analytics import models as analytics_models
from siyu.appointments import models as appointment_models
from siyu.auth import models as auth_models
from siyu.catalog import models as catalog_models
from siyu.channels import models as channel_models
from siyu.channels.phone import models as phone_models
from siyu.content import models as content_models
from siyu.customers import models as customer_models
from siyu.db import Base
from siyu.events import models as event_models
from siyu.groups import models as group_models
from siyu.jobs import models as job_models
from siyu.journeys import models as journey_models
from siyu.kb import models as kb_models
from siyu.playbooks import models as playbook_models
from siyu.points import models as points_models
from siyu.privacy import models as privacy_models
from siyu.referrals import models as referral_models
from siyu.segments import models as segment_models
from siyu.service import models as service_models
from siyu.voc import models as voc_models

metadata = Base.metadata

__all__ = [
    "analytics_models",
    "appointment_models",
    "auth_models",
    "catalog_models",
    "channel_models",
    "content_models",
    "customer_models",
    "event_models",
    "group_models",
    "job_models",
    "journey_models",
    "kb_models",
    "metadata",
    "phone_models",
    "playbook_models",
    "points_models",
    "privacy_models",
    "referral_models",
    "segment_models",
    "service_models",
    "voc_models",
]
