"""api keys: scopes, expiry and last-used time

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 17:55:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = '0021'
down_revision: str | tuple[str, ...] | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('expires_at', siyu.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', siyu.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scopes')
