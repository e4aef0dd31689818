"""handoffs to field sales; the list a lead came from; preview

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
import hub.columns


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('handoffs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('territory', sa.String(length=32), nullable=True),
    sa.Column('rep_name', sa.String(length=200), nullable=True),
    sa.Column('rep_email', sa.String(length=200), nullable=True),
    sa.Column('webhook_url', sa.String(length=500), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('sent_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('outcome_reason', sa.String(length=300), nullable=True),
    sa.Column('outcome_at', hub.columns.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lead_id')
    )
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handoffs_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_handoffs_status'), ['status'], unique=False)

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preview_agent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('list_name', sa.String(length=100), nullable=True))
        batch_op.create_index('ix_leads_preview_agent_id', ['preview_agent_id'], unique=False, sqlite_where=sa.text('preview_agent_id IS NOT NULL'), postgresql_where=sa.text('preview_agent_id IS NOT NULL'))
        batch_op.create_foreign_key('fk_leads_preview_agent_id', 'agents', ['preview_agent_id'], ['id'], ondelete='SET NULL')

def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_constraint('fk_leads_preview_agent_id', type_='foreignkey')
        batch_op.drop_index('ix_leads_preview_agent_id', sqlite_where=sa.text('preview_agent_id IS NOT NULL'), postgresql_where=sa.text('preview_agent_id IS NOT NULL'))
        batch_op.drop_column('list_name')
        batch_op.drop_column('preview_agent_id')

    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handoffs_status'))
        batch_op.drop_index(batch_op.f('ix_handoffs_campaign_id'))

    op.drop_table('handoffs')
