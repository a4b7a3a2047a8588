"""places carry display names per language

Revision ID: 20261204_03_place_names
Revises: 20261204_01_consents
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_03_place_names"
down_revision: str | None = "20261204_01_consents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("topology_nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("names", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("topology_nodes", schema=None) as batch_op:
        batch_op.drop_column("names")
