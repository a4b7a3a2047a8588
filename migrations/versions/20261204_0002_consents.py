"""consents: the customer's own opt-outs and opt-ins, kept apart from the inventory

Revision ID: 20261204_01_consents
Revises: 0001
Create Date: 2026-12-04 19:50:00

Every opt-out stored so far in `customers.opt_outs` becomes a `migrated` consent record: a STOP
and an operator's listing cannot be told apart there, so each is kept as the customer's own,
which no later inventory import undoes.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '20261204_01_consents'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    consents = op.create_table('consents',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=True),
    sa.Column('at', app.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index('ix_consents_customer_id_channel', ['customer_id', 'channel', 'id'], unique=False)

    customers = sa.table('customers', sa.column('id', sa.String), sa.column('opt_outs', sa.JSON))
    now = datetime.now(UTC)
    rows = [
        {'customer_id': customer_id, 'channel': channel, 'opted_out': True,
         'source': 'migrated', 'actor': None, 'at': now}
        for customer_id, opt_outs in op.get_bind().execute(
            sa.select(customers.c.id, customers.c.opt_outs).order_by(customers.c.id)
        )
        for channel in dict.fromkeys(opt_outs or ())
    ]
    if rows:
        op.bulk_insert(consents, rows)


def downgrade() -> None:
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_customer_id_channel')

    op.drop_table('consents')
