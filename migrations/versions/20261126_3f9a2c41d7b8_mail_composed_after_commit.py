"""booking mail is queued as facts and composed after the commit

Revision ID: 3f9a2c41d7b8
Revises: ec0c655715a6
Create Date: 2026-11-26 14:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3f9a2c41d7b8'
down_revision = 'ec0c655715a6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=True))
        batch_op.alter_column('subject', existing_type=sa.String(length=300), nullable=True)
        batch_op.alter_column('body_text', existing_type=sa.Text(), nullable=True)


def downgrade():
    # rows still waiting to be composed cannot be kept without their facts
    op.execute("DELETE FROM outgoing_mail WHERE body_text IS NULL")
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.alter_column('body_text', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('subject', existing_type=sa.String(length=300), nullable=False)
        batch_op.drop_column('facts')
