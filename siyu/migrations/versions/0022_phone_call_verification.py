"""phone calls: the candidates and the verifying question of a number naming several customers

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('phone_calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'candidate_ids',
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'),
            nullable=True))
        batch_op.add_column(sa.Column('verify_question', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('phone_calls', schema=None) as batch_op:
        batch_op.drop_column('verify_question')
        batch_op.drop_column('candidate_ids')
