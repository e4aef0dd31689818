"""complaints (opened at wrap-up, closed with a resolution) and callbacks booked at an inbound wrap-up

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

import hub.columns


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('complaints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('opened_by', sa.Integer(), nullable=True),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('closed_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('closed_by', sa.Integer(), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['closed_by'], ['agents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['opened_by'], ['agents.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_complaints_customer_open', 'complaints', ['customer_id', 'closed_at'], unique=False)
    op.create_table('scheduled_callbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('queue_id', sa.Integer(), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('due_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('owner_agent_id', sa.Integer(), nullable=True),
    sa.Column('booked_by', sa.Integer(), nullable=True),
    sa.Column('booked_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('routed_sid', sa.String(length=34), nullable=True),
    sa.ForeignKeyConstraint(['booked_by'], ['agents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_agent_id'], ['agents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_scheduled_callbacks_customer_status', 'scheduled_callbacks', ['customer_id', 'status'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_scheduled_callbacks_customer_status', table_name='scheduled_callbacks')
    op.drop_table('scheduled_callbacks')
    op.drop_index('ix_complaints_customer_open', table_name='complaints')
    op.drop_table('complaints')
