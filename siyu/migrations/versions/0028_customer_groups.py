"""customer groups: WeCom customer groups (客户群) and their members

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03 09:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = '0028'
down_revision: str | tuple[str, ...] | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'customer_groups',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('chat_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=True),
        sa.Column('owner', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('synced_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_groups')),
        sa.UniqueConstraint('chat_id', name=op.f('uq_customer_groups_chat_id')),
    )
    op.create_table(
        'customer_group_members',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('group_id', _ID, nullable=False),
        sa.Column('userid', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('customer_id', _ID, nullable=True),
        sa.Column('joined_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('left_at', siyu.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['group_id'], ['customer_groups.id'],
                                name=op.f('fk_customer_group_members_group_id_customer_groups'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_customer_group_members_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_group_members')),
        sa.UniqueConstraint('group_id', 'userid',
                            name=op.f('uq_customer_group_members_group_id_userid')),
    )
    op.create_index('ix_customer_group_members_customer', 'customer_group_members',
                    ['customer_id'])


def downgrade() -> None:
    op.drop_index('ix_customer_group_members_customer', table_name='customer_group_members')
    op.drop_table('customer_group_members')
    op.drop_table('customer_groups')
