"""Imports every domain's models so the metadata (and Alembic) sees all tables."""

from siyu.auth import models as auth_models
from siyu.customers import models as customer_models
from siyu.db import Base
from siyu.events import models as event_models

metadata = Base.metadata

__all__ = ["auth_models", "customer_models", "event_models", "metadata"]
