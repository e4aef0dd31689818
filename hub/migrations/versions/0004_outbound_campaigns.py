"""outbound campaigns: campaigns and their agents, leads, dial attempts (the abandon ledger), do-not-call

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 18:12:14.305306
"""
from alembic import op
import sqlalchemy as sa
import hub.columns


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('caller_id', sa.String(length=20), nullable=False),
    sa.Column('schedule', sa.JSON(), nullable=False),
    sa.Column('script', sa.JSON(), nullable=False),
    sa.Column('retry_rules', sa.JSON(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('abandon_target', sa.Float(), nullable=False),
    sa.Column('ring_timeout_s', sa.Integer(), nullable=False),
    sa.Column('amd', sa.Boolean(), nullable=False),
    sa.Column('machine_action', sa.String(length=16), nullable=False),
    sa.Column('machine_message', sa.Text(), nullable=True),
    sa.Column('abandon_message', sa.Text(), nullable=False),
    sa.Column('wrap_up_s', sa.Integer(), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=True),
    sa.Column('territories', sa.JSON(), nullable=False),
    sa.Column('cost_per_lead', sa.Float(), nullable=False),
    sa.Column('cost_per_minute', sa.Float(), nullable=False),
    sa.Column('cost_per_agent_hour', sa.Float(), nullable=False),
    sa.Column('requires_registry', sa.Boolean(), nullable=False),
    sa.Column('dial_stats', sa.JSON(), nullable=False),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('status_changed_at', hub.columns.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('registry_extracts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('extract_date', sa.Date(), nullable=False),
    sa.Column('imported_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('campaign_agents',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'agent_id')
    )
    op.create_table('dnc_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('extract_id', sa.Integer(), nullable=True),
    sa.Column('added_at', hub.columns.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['extract_id'], ['registry_extracts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('phone', 'source', name='uq_dnc_phone_source')
    )
    with op.batch_alter_table('dnc_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dnc_entries_phone'), ['phone'], unique=False)

    op.create_table('leads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=True),
    sa.Column('state', sa.String(length=2), nullable=True),
    sa.Column('postal_code', sa.String(length=16), nullable=True),
    sa.Column('custom_fields', sa.JSON(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('attempts_by_outcome', sa.JSON(), nullable=False),
    sa.Column('last_outcome', sa.String(length=32), nullable=True),
    sa.Column('last_attempt_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('callback_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('callback_agent_id', sa.Integer(), nullable=True),
    sa.Column('skip_code', sa.String(length=32), nullable=True),
    sa.Column('skip_detail', sa.String(length=300), nullable=True),
    sa.Column('next_check_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('disposition', sa.String(length=32), nullable=True),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['callback_agent_id'], ['agents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'phone', name='uq_leads_campaign_phone')
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index('ix_leads_customer_id', ['customer_id'], unique=False, sqlite_where=sa.text('customer_id IS NOT NULL'), postgresql_where=sa.text('customer_id IS NOT NULL'))
        batch_op.create_index('ix_leads_dialable', ['campaign_id', 'status', 'next_check_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_phone'), ['phone'], unique=False)

    op.create_table('dial_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('covered', sa.Boolean(), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=True),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('dialed_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('answered_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('answered_by', sa.String(length=32), nullable=True),
    sa.Column('ring_s', sa.Float(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('agent_joined_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('seconds_to_agent', sa.Float(), nullable=True),
    sa.Column('abandoned', sa.Boolean(), nullable=False),
    sa.Column('message_played', sa.Boolean(), nullable=False),
    sa.Column('ended_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('duration_s', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('call_sid'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('dial_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_dial_attempts_campaign_answered', ['campaign_id', 'answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_dial_attempts_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dial_attempts_status'), ['status'], unique=False)
        batch_op.create_index('uq_dial_attempts_lead_in_flight', ['lead_id'], unique=True, sqlite_where=sa.text("status IN ('intent', 'dialed', 'answered')"), postgresql_where=sa.text("status IN ('intent', 'dialed', 'answered')"))

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_calls_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_foreign_key('fk_calls_campaign_id', 'campaigns', ['campaign_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_constraint('fk_calls_campaign_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_calls_campaign_id'))
        batch_op.drop_column('campaign_id')

    with op.batch_alter_table('dial_attempts', schema=None) as batch_op:
        batch_op.drop_index('uq_dial_attempts_lead_in_flight', sqlite_where=sa.text("status IN ('intent', 'dialed', 'answered')"), postgresql_where=sa.text("status IN ('intent', 'dialed', 'answered')"))
        batch_op.drop_index(batch_op.f('ix_dial_attempts_status'))
        batch_op.drop_index(batch_op.f('ix_dial_attempts_lead_id'))
        batch_op.drop_index('ix_dial_attempts_campaign_answered')

    op.drop_table('dial_attempts')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_phone'))
        batch_op.drop_index('ix_leads_dialable')
        batch_op.drop_index('ix_leads_customer_id', sqlite_where=sa.text('customer_id IS NOT NULL'), postgresql_where=sa.text('customer_id IS NOT NULL'))

    op.drop_table('leads')
    with op.batch_alter_table('dnc_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dnc_entries_phone'))

    op.drop_table('dnc_entries')
    op.drop_table('campaign_agents')
    op.drop_table('registry_extracts')
    op.drop_table('campaigns')
