"""referral codes: a customer may hold several personal codes (a merge keeps the merged
customer's code working for the kept one)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 17:20:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0020'
down_revision: str | tuple[str, ...] | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('referral_codes') as batch:
        batch.drop_constraint('uq_referral_codes_customer_id', type_='unique')
        batch.create_index('ix_referral_codes_customer_id', ['customer_id'])


def downgrade() -> None:
    with op.batch_alter_table('referral_codes') as batch:
        batch.drop_index('ix_referral_codes_customer_id')
        batch.create_unique_constraint('uq_referral_codes_customer_id', ['customer_id'])
