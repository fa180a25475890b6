"""auth: server-side console sessions, login throttles, TOTP second factor on users

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 17:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = '0023'
down_revision: str | tuple[str, ...] | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'user_sessions',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', _ID, nullable=False),
        sa.Column('created_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_user_sessions_token_hash')),
    )
    op.create_index(op.f('ix_user_sessions_user_id'), 'user_sessions', ['user_id'], unique=False)
    op.create_table(
        'login_throttles',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('scope', sa.String(length=10), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_failure_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('locked_until', siyu.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_throttles')),
        sa.UniqueConstraint('scope', 'key_hash', name=op.f('uq_login_throttles_scope_key_hash')),
    )
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('totp_secret', sa.Text(), nullable=True))
        batch.add_column(sa.Column('totp_confirmed_at', siyu.db.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column('totp_last_step', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('totp_last_step')
        batch.drop_column('totp_confirmed_at')
        batch.drop_column('totp_secret')
    op.drop_table('login_throttles')
    op.drop_index(op.f('ix_user_sessions_user_id'), table_name='user_sessions')
    op.drop_table('user_sessions')
