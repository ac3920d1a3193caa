"""Officers choose their own password at first sign-in

Revision ID: 0011_password_chosen_by_officer
Revises: 0010_new_case_mail_owed

`officers.must_change_password`: the password was set by someone else (an administrator creating the account,
or a reset with the recovery key), so the officer must choose their own before they can do anything else.
Accounts already here keep the passwords they have: nobody can tell from the database whether their
password was ever changed by the officer, and locking everyone into a change at once is for the operator to
decide (`flask portal reset-password` sets the flag for one account).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_password_chosen_by_officer"
down_revision = "0010_new_case_mail_owed"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "officers", sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade():
    op.drop_column("officers", "must_change_password")  # SQLite 3.35+ drops a column in place
