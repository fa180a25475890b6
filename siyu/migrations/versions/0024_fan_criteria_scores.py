"""customer scores: the true-fan score's three criteria (repeat, recommend, tolerance)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 21:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0024'
down_revision: str | tuple[str, ...] | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fan_repeat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('fan_recommend', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('fan_tolerance', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.drop_column('fan_tolerance')
        batch_op.drop_column('fan_recommend')
        batch_op.drop_column('fan_repeat')
