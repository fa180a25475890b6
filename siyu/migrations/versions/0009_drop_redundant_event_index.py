"""drop ix_events_type_ts: ix_events_type_ts_customer (type, ts, customer_id) answers every
query it did, and each event insert paid for both

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 06:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | tuple[str, ...] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_events_type_ts', table_name='events')


def downgrade() -> None:
    op.create_index('ix_events_type_ts', 'events', ['type', 'ts'], unique=False)
