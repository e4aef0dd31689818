"""customers, agents, queues, calls, call events, timeline

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa
import hub.columns


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=300), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=True),
    sa.Column('api_token_hash', sa.String(length=64), nullable=True),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.Column('presence', sa.String(length=16), nullable=False),
    sa.Column('break_reason', sa.String(length=32), nullable=True),
    sa.Column('work', sa.String(length=16), nullable=False),
    sa.Column('state_since', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('idle_since', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=True),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('api_token_hash'),
    sa.UniqueConstraint('login')
    )
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.create_index('uq_agents_call_sid', ['call_sid'], unique=True, sqlite_where=sa.text('call_sid IS NOT NULL'), postgresql_where=sa.text('call_sid IS NOT NULL'))

    op.create_table('call_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_sid', sa.String(length=34), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sequence_number', sa.Integer(), nullable=True),
    sa.Column('idempotency_token', sa.String(length=128), nullable=True),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('occurred_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('received_at', hub.columns.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_token'),
    sa.UniqueConstraint('source_sid', 'kind', 'sequence_number', name='uq_call_events_sequence')
    )
    with op.batch_alter_table('call_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_events_call_sid'), ['call_sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_events_source_sid'), ['source_sid'], unique=False)

    op.create_table('queues',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('phone_number', sa.String(length=20), nullable=True),
    sa.Column('offer_timeout_s', sa.Integer(), nullable=False),
    sa.Column('wrap_up_s', sa.Integer(), nullable=False),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('phone_number')
    )
    op.create_table('routing_lock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute("INSERT INTO routing_lock (id) VALUES (1)")
    op.create_table('agent_skills',
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('skill', sa.String(length=64), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', 'skill')
    )
    op.create_table('customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('value_tier', sa.String(length=16), nullable=False),
    sa.Column('lifecycle_stage', sa.String(length=32), nullable=False),
    sa.Column('owner_agent_id', sa.Integer(), nullable=True),
    sa.Column('custom_fields', sa.JSON(), nullable=False),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_agent_id'], ['agents.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('queue_skills',
    sa.Column('queue_id', sa.Integer(), nullable=False),
    sa.Column('skill', sa.String(length=64), nullable=False),
    sa.Column('min_level', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('queue_id', 'skill')
    )
    op.create_table('calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('leg', sa.String(length=16), nullable=False),
    sa.Column('parent_sid', sa.String(length=34), nullable=True),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('from_number', sa.String(length=40), nullable=False),
    sa.Column('to_number', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('queue_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_sequence', sa.Integer(), nullable=True),
    sa.Column('routing_state', sa.String(length=16), nullable=True),
    sa.Column('offer_expires_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('tried_agent_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('connected_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('ended_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('duration_s', sa.Integer(), nullable=True),
    sa.Column('wrap_up_until', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('disposition', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sid')
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calls_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_parent_sid'), ['parent_sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_calls_routing_state'), ['routing_state'], unique=False)

    op.create_table('customer_phones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('label', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('customer_phones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_phones_customer_id'), ['customer_id'], unique=False)

    op.create_table('timeline_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('timeline_entries', schema=None) as batch_op:
        batch_op.create_index('ix_timeline_customer_time', ['customer_id', 'occurred_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('timeline_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_customer_time')

    op.drop_table('timeline_entries')
    with op.batch_alter_table('customer_phones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_phones_customer_id'))

    op.drop_table('customer_phones')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_routing_state'))
        batch_op.drop_index(batch_op.f('ix_calls_parent_sid'))
        batch_op.drop_index(batch_op.f('ix_calls_customer_id'))
        batch_op.drop_index(batch_op.f('ix_calls_agent_id'))

    op.drop_table('calls')
    op.drop_table('queue_skills')
    op.drop_table('customers')
    op.drop_table('agent_skills')
    op.drop_table('routing_lock')
    op.drop_table('queues')
    with op.batch_alter_table('call_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_events_source_sid'))
        batch_op.drop_index(batch_op.f('ix_call_events_call_sid'))

    op.drop_table('call_events')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index('uq_agents_call_sid', sqlite_where=sa.text('call_sid IS NOT NULL'), postgresql_where=sa.text('call_sid IS NOT NULL'))

    op.drop_table('agents')
