"""appointments: service types, advisors' slots and bookings (one holding booking per slot)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 08:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = '0026'
down_revision: str | tuple[str, ...] | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _created() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column('created_at', siyu.db.UTCDateTime(timezone=True),
                     server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False)


def upgrade() -> None:
    op.create_table(
        'appointment_service_types',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_appointment_service_types')),
        sa.UniqueConstraint('name', name=op.f('uq_appointment_service_types_name')),
    )
    op.create_table(
        'appointment_slots',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('advisor_id', _ID, nullable=False),
        sa.Column('service_type_id', _ID, nullable=False),
        sa.Column('starts_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ends_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('location', sa.String(length=100), nullable=True),
        sa.Column('open', sa.Boolean(), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(['advisor_id'], ['users.id'],
                                name=op.f('fk_appointment_slots_advisor_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(
            ['service_type_id'], ['appointment_service_types.id'],
            name=op.f('fk_appointment_slots_service_type_id_appointment_service_types'),
            ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_appointment_slots')),
        sa.UniqueConstraint('advisor_id', 'starts_at',
                            name=op.f('uq_appointment_slots_advisor_id_starts_at')),
    )
    op.create_index('ix_appointment_slots_starts_at', 'appointment_slots', ['starts_at'])
    op.create_table(
        'appointments',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('slot_id', _ID, nullable=False),
        sa.Column('customer_id', _ID, nullable=False),
        sa.Column('advisor_id', _ID, nullable=False),
        sa.Column('service_type_id', _ID, nullable=False),
        sa.Column('starts_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('booked_by', _ID, nullable=True),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.Column('reschedules', sa.Integer(), nullable=False),
        sa.Column('updated_at', siyu.db.UTCDateTime(timezone=True), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(['slot_id'], ['appointment_slots.id'],
                                name=op.f('fk_appointments_slot_id_appointment_slots'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_appointments_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['advisor_id'], ['users.id'],
                                name=op.f('fk_appointments_advisor_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(
            ['service_type_id'], ['appointment_service_types.id'],
            name=op.f('fk_appointments_service_type_id_appointment_service_types'),
            ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['booked_by'], ['users.id'],
                                name=op.f('fk_appointments_booked_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments')),
    )
    # The guarantee against double booking: one appointment that is not cancelled per slot.
    op.create_index('uq_appointments_slot_holding', 'appointments', ['slot_id'], unique=True,
                    sqlite_where=sa.text("status != 'cancelled'"),
                    postgresql_where=sa.text("status != 'cancelled'"))
    op.create_index('ix_appointments_customer', 'appointments', ['customer_id', 'starts_at'])
    op.create_index('ix_appointments_advisor', 'appointments', ['advisor_id', 'starts_at'])


def downgrade() -> None:
    op.drop_index('ix_appointments_advisor', table_name='appointments')
    op.drop_index('ix_appointments_customer', table_name='appointments')
    op.drop_index('uq_appointments_slot_holding', table_name='appointments')
    op.drop_table('appointments')
    op.drop_index('ix_appointment_slots_starts_at', table_name='appointment_slots')
    op.drop_table('appointment_slots')
    op.drop_table('appointment_service_types')
