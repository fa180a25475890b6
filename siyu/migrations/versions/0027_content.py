"""content: items, per-recipient links and clicks (tracked content)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = '0027'
down_revision: str | tuple[str, ...] | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'content_items',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('sku', sa.String(length=64), nullable=True),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True),
                  server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_content_items')),
        sa.UniqueConstraint('code', name=op.f('uq_content_items_code')),
        sa.UniqueConstraint('name', name=op.f('uq_content_items_name')),
    )
    op.create_table(
        'content_links',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('token', sa.String(length=16), nullable=False),
        sa.Column('item_id', _ID, nullable=False),
        sa.Column('customer_id', _ID, nullable=False),
        sa.Column('delivery_key', sa.String(length=200), nullable=False),
        sa.Column('playbook_id', _ID, nullable=True),
        sa.Column('step', sa.Integer(), nullable=True),
        sa.Column('at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['content_items.id'],
                                name=op.f('fk_content_links_item_id_content_items'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_content_links_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_content_links')),
        sa.UniqueConstraint('token', name=op.f('uq_content_links_token')),
        sa.UniqueConstraint('item_id', 'delivery_key',
                            name=op.f('uq_content_links_item_id_delivery_key')),
    )
    op.create_index('ix_content_links_customer', 'content_links', ['customer_id'])
    op.create_table(
        'content_clicks',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('item_id', _ID, nullable=False),
        sa.Column('link_id', _ID, nullable=True),
        sa.Column('customer_id', _ID, nullable=True),
        sa.Column('at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['content_items.id'],
                                name=op.f('fk_content_clicks_item_id_content_items'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['link_id'], ['content_links.id'],
                                name=op.f('fk_content_clicks_link_id_content_links'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_content_clicks_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_content_clicks')),
    )
    op.create_index('ix_content_clicks_item', 'content_clicks', ['item_id', 'at'])
    op.create_index(op.f('ix_content_clicks_customer_id'), 'content_clicks', ['customer_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_content_clicks_customer_id'), table_name='content_clicks')
    op.drop_index('ix_content_clicks_item', table_name='content_clicks')
    op.drop_table('content_clicks')
    op.drop_index('ix_content_links_customer', table_name='content_links')
    op.drop_table('content_links')
    op.drop_table('content_items')
