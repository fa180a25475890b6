"""points: the rewards catalogue and redemptions

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 22:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = '0025'
down_revision: str | tuple[str, ...] | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'rewards',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('cost', sa.Integer(), nullable=False),
        sa.Column('stock', sa.Integer(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True),
                  server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rewards')),
        sa.UniqueConstraint('name', name=op.f('uq_rewards_name')),
    )
    op.create_table(
        'reward_redemptions',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('reward_id', _ID, nullable=False),
        sa.Column('customer_id', _ID, nullable=False),
        sa.Column('entry_id', _ID, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True),
                  server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'],
                                name=op.f('fk_reward_redemptions_reward_id_rewards'),
                                ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_reward_redemptions_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['entry_id'], ['points_entries.id'],
                                name=op.f('fk_reward_redemptions_entry_id_points_entries'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_redemptions')),
        sa.UniqueConstraint('key', name=op.f('uq_reward_redemptions_key')),
    )
    op.create_index('ix_reward_redemptions_customer', 'reward_redemptions', ['customer_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_reward_redemptions_customer', table_name='reward_redemptions')
    op.drop_table('reward_redemptions')
    op.drop_table('rewards')
