"""routing rules, pending presence, traces

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import hub.columns


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('routing_traces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=False),
    sa.Column('at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.String(length=300), nullable=False),
    sa.Column('chosen_agent_id', sa.Integer(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('routing_traces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routing_traces_call_sid'), ['call_sid'], unique=False)

    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_presence', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('pending_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('missed_offers', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority_s', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('preferred_agent_ids', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('routing_outcome', sa.String(length=32), nullable=True))

    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('strategy', sa.String(length=16), server_default='longest_idle', nullable=False))
        batch_op.add_column(sa.Column('preferred_window_s', sa.Integer(), server_default='20', nullable=False))
        batch_op.add_column(sa.Column('escalation', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('max_wait_s', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('overflow_action', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('overflow_queue', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hours', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('after_hours_action', sa.String(length=16), server_default='voicemail', nullable=False))
        batch_op.add_column(sa.Column('after_hours_queue', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('service_level_s', sa.Integer(), server_default='20', nullable=False))
        batch_op.add_column(sa.Column('last_agent_id', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.drop_column('last_agent_id')
        batch_op.drop_column('service_level_s')
        batch_op.drop_column('after_hours_queue')
        batch_op.drop_column('after_hours_action')
        batch_op.drop_column('hours')
        batch_op.drop_column('overflow_queue')
        batch_op.drop_column('overflow_action')
        batch_op.drop_column('max_wait_s')
        batch_op.drop_column('escalation')
        batch_op.drop_column('preferred_window_s')
        batch_op.drop_column('strategy')

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('routing_outcome')
        batch_op.drop_column('preferred_agent_ids')
        batch_op.drop_column('priority_s')

    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('missed_offers')
        batch_op.drop_column('pending_reason')
        batch_op.drop_column('pending_presence')

    with op.batch_alter_table('routing_traces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_routing_traces_call_sid'))

    op.drop_table('routing_traces')
