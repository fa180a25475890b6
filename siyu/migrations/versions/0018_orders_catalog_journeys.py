"""orders carry their version (updated_at) and recipient; the product catalogue; journeys:
stage rules, scenarios, customer stages, repurchase due, scenario memberships

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 09:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import siyu.db

revision: str = '0018'
down_revision: str | tuple[str, ...] | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('updated_at', siyu.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('recipient_name', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('recipient_phone', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('recipient_address', sa.String(length=300), nullable=True))
    op.create_table(
        'products',
        sa.Column('sku', sa.String(length=60), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('category', sa.String(length=60), nullable=True),
        sa.Column('price', sa.Float(), nullable=True),
        sa.Column('cycle_days', sa.Float(), nullable=True),
        sa.Column('bundle_of', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
        sa.Column('effective_cycle_days', sa.Float(), nullable=True),
        sa.Column('updated_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
                  nullable=False),
        sa.PrimaryKeyConstraint('sku', name=op.f('pk_products')),
    )
    op.create_table('journey_stage_rules',
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('rule', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('rule_text', sa.Text(), nullable=False),
    sa.Column('created_at', siyu.db.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('stage', name=op.f('pk_journey_stage_rules'))
    )
    op.create_table('scenarios',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('rule', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('rule_text', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('tag', sa.String(length=60), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', siyu.db.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenarios')),
    sa.UniqueConstraint('name', name=op.f('uq_scenarios_name'))
    )
    op.create_table('customer_journeys',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('since', siyu.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('computed_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_journeys_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_journeys'))
    )
    with op.batch_alter_table('customer_journeys', schema=None) as batch_op:
        batch_op.create_index('ix_customer_journeys_stage', ['stage'], unique=False)

    op.create_table('customer_scenarios',
    sa.Column('scenario_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entered_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('why', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_scenarios_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_customer_scenarios_scenario_id_scenarios'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('scenario_id', 'customer_id', name=op.f('pk_customer_scenarios'))
    )
    with op.batch_alter_table('customer_scenarios', schema=None) as batch_op:
        batch_op.create_index('ix_customer_scenarios_customer', ['customer_id'], unique=False)

    op.create_table('repurchase_due',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.String(length=100), nullable=False),
    sa.Column('sku', sa.String(length=60), nullable=False),
    sa.Column('quantity', sa.Float(), nullable=False),
    sa.Column('ordered_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_repurchase_due_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_repurchase_due'))
    )
    with op.batch_alter_table('repurchase_due', schema=None) as batch_op:
        batch_op.create_index('ix_repurchase_due_due_at', ['due_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('repurchase_due', schema=None) as batch_op:
        batch_op.drop_index('ix_repurchase_due_due_at')

    op.drop_table('repurchase_due')
    with op.batch_alter_table('customer_scenarios', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_scenarios_customer')

    op.drop_table('customer_scenarios')
    with op.batch_alter_table('customer_journeys', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_journeys_stage')

    op.drop_table('customer_journeys')
    op.drop_table('scenarios')
    op.drop_table('journey_stage_rules')
    op.drop_table('products')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('recipient_address')
        batch.drop_column('recipient_phone')
        batch.drop_column('recipient_name')
        batch.drop_column('updated_at')
