"""install_secrets: the generated master secret and key generations on PostgreSQL

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 07:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = '0015'
down_revision: str | tuple[str, ...] | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'install_secrets',
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_install_secrets')),
    )


def downgrade() -> None:
    op.drop_table('install_secrets')
