"""referral codes: a channel code's advisor and its WeCom 联系我 configuration

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04 19:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0029'
down_revision: str | tuple[str, ...] | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('referral_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('advisor_id', _ID, nullable=True))
        batch_op.add_column(sa.Column('wecom_config_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('wecom_qr_code', sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_referral_codes_advisor_id_users'), 'users',
                                    ['advisor_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('referral_codes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_referral_codes_advisor_id_users'),
                                 type_='foreignkey')
        batch_op.drop_column('wecom_qr_code')
        batch_op.drop_column('wecom_config_id')
        batch_op.drop_column('advisor_id')
