"""crm: orders, customer values, tier and stage history, model runs, settings, segments

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
import hub.columns


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_model_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('finished_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('buyers', sa.Integer(), nullable=False),
    sa.Column('orders', sa.BigInteger(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('tier_changes', sa.Integer(), nullable=False),
    sa.Column('stage_changes', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('crm_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('cost_per_minute', sa.Float(), nullable=False),
    sa.Column('cost_per_order', sa.Float(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('updated_at', hub.columns.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('crm_segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=True),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('updated_at', hub.columns.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['agents.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('crm_customer_values',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('purchase_days', sa.Integer(), nullable=False),
    sa.Column('first_purchase_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('last_purchase_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('revenue_cents', sa.BigInteger(), nullable=False),
    sa.Column('revenue_12m_cents', sa.BigInteger(), nullable=False),
    sa.Column('average_order_cents', sa.BigInteger(), nullable=False),
    sa.Column('recency_score', sa.SmallInteger(), nullable=False),
    sa.Column('frequency_score', sa.SmallInteger(), nullable=False),
    sa.Column('monetary_score', sa.SmallInteger(), nullable=False),
    sa.Column('expected_purchases', sa.Float(), nullable=True),
    sa.Column('p_alive', sa.Float(), nullable=True),
    sa.Column('clv_cents', sa.BigInteger(), nullable=True),
    sa.Column('churn_risk', sa.Boolean(), nullable=False),
    sa.Column('churn_reason', sa.String(length=200), nullable=True),
    sa.Column('talk_minutes', sa.Integer(), nullable=False),
    sa.Column('cost_to_serve_cents', sa.BigInteger(), nullable=False),
    sa.Column('value_to_date_cents', sa.BigInteger(), nullable=False),
    sa.Column('advocate', sa.Boolean(), nullable=False),
    sa.Column('computed_at', hub.columns.UTCDateTime(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id')
    )
    op.create_table('crm_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('ordered_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('product', sa.String(length=100), nullable=True),
    sa.Column('category', sa.String(length=100), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', hub.columns.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'external_id', name='uq_crm_orders_source_external_id')
    )
    with op.batch_alter_table('crm_orders', schema=None) as batch_op:
        batch_op.create_index('ix_crm_orders_customer_time', ['customer_id', 'ordered_at'], unique=False)

    op.create_table('crm_stage_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('from_stage', sa.String(length=32), nullable=True),
    sa.Column('to_stage', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_stage_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_stage_changes_customer_id'), ['customer_id'], unique=False)

    op.create_table('crm_tier_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', hub.columns.UTCDateTime(), nullable=False),
    sa.Column('from_tier', sa.String(length=16), nullable=True),
    sa.Column('to_tier', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_tier_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_tier_changes_customer_id'), ['customer_id'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_ref', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_customers_external_ref', ['external_ref'])


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint('uq_customers_external_ref', type_='unique')
        batch_op.drop_column('external_ref')

    with op.batch_alter_table('crm_tier_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_tier_changes_customer_id'))

    op.drop_table('crm_tier_changes')
    with op.batch_alter_table('crm_stage_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_stage_changes_customer_id'))

    op.drop_table('crm_stage_changes')
    with op.batch_alter_table('crm_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_orders_customer_time')

    op.drop_table('crm_orders')
    op.drop_table('crm_customer_values')
    op.drop_table('crm_segments')
    op.drop_table('crm_settings')
    op.drop_table('crm_model_runs')
