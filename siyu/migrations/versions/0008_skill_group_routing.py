"""intents name the skill group that takes their hand-offs; conversations remember the
customer's advisor for routing from the queue

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | tuple[str, ...] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('kb_intents') as batch:
        batch.add_column(sa.Column('skill_group', sa.String(length=40), nullable=True))
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('advisor_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('advisor_id')
    with op.batch_alter_table('kb_intents') as batch:
        batch.drop_column('skill_group')
