"""referrals: personal invite codes and channel codes, attributions of new customers

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 14:15:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = '0019'
down_revision: str | tuple[str, ...] | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'referral_codes',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('customer_id', _ID, nullable=True),
        sa.Column('name', sa.String(length=100), nullable=True),
        sa.Column('state', sa.String(length=30), nullable=True),
        sa.Column('channel', sa.String(length=30), nullable=True),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True),
                  server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_referral_codes_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_codes')),
        sa.UniqueConstraint('code', name=op.f('uq_referral_codes_code')),
        sa.UniqueConstraint('customer_id', name=op.f('uq_referral_codes_customer_id')),
        sa.UniqueConstraint('state', name=op.f('uq_referral_codes_state')),
    )
    op.create_table(
        'referral_attributions',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('referred_id', _ID, nullable=False),
        sa.Column('code_id', _ID, nullable=False),
        sa.Column('referrer_id', _ID, nullable=True),
        sa.Column('at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=True),
        sa.Column('order_id', sa.String(length=100), nullable=True),
        sa.Column('qualified_at', siyu.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True),
                  server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(
            ['code_id'], ['referral_codes.id'],
            name=op.f('fk_referral_attributions_code_id_referral_codes'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(
            ['referred_id'], ['customers.id'],
            name=op.f('fk_referral_attributions_referred_id_customers'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(
            ['referrer_id'], ['customers.id'],
            name=op.f('fk_referral_attributions_referrer_id_customers'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_attributions')),
        sa.UniqueConstraint('referred_id', name=op.f('uq_referral_attributions_referred_id')),
    )
    op.create_index('ix_referral_attributions_code_id', 'referral_attributions', ['code_id'])
    op.create_index('ix_referral_attributions_referrer_id', 'referral_attributions',
                    ['referrer_id'])
    op.create_index('ix_referral_attributions_status', 'referral_attributions',
                    ['status', 'referred_id'])


def downgrade() -> None:
    op.drop_table('referral_attributions')
    op.drop_table('referral_codes')
