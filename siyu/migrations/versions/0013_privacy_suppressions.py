"""do-not-contact hashes of erased persons' identities

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 08:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = '0013'
down_revision: str | tuple[str, ...] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'privacy_suppressions',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_suppressions')),
        sa.UniqueConstraint('digest', name=op.f('uq_privacy_suppressions_digest')),
    )


def downgrade() -> None:
    op.drop_table('privacy_suppressions')
