"""Access in one place: officers' staff numbers sealed, declared conflicts, queue key generations

Revision ID: 0012_access_and_key_generations
Revises: 0011_password_chosen_by_officer

- `officers.staff_number_index` (the same blind index as `reports.subject_staff_index`, beside the officer's
  name in clear: one join named the subject of every report about an officer) becomes
  `officers.staff_index_sealed`: that index sealed under a key derived from the blind-index key
  (portal.core.crypto.seal_officer_index). Existing rows are sealed here, with the application's secrets; a
  database that has officers with a staff number cannot be upgraded without them.
- `case_conflicts`: conflicts of interest an officer declared on a case, and a supervisor's clearing of a
  namesake (portal.access), each naming its officer and kind only by a keyed tag (crypto.conflict_tag).
- Queue key generations (portal.sealing.queue_keys): `queues.key_generation`, `queue_memberships.generation` (the
  unique key becomes officer, queue and generation), `reports.queue_key_generation`, and
  `queue_key_generations`, the retired key pairs kept for the recovery key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_access_and_key_generations"
down_revision = "0011_password_chosen_by_officer"
branch_labels = None
depends_on = None


def _blind_index_key() -> bytes:
    from flask import current_app

    secrets = current_app.extensions.get("portal_secrets")
    if secrets is None:
        raise RuntimeError(
            "officers' staff numbers must be sealed with the server's blind-index key: run flask portal init"
        )
    return secrets.blind_index_key


def _seal_officer_indexes(to_sealed: bool) -> None:
    from portal.core import crypto

    connection = op.get_bind()
    source, target = (
        ("staff_number_index", "staff_index_sealed") if to_sealed else ("staff_index_sealed", "staff_number_index")
    )
    rows = connection.execute(sa.text(f"SELECT id, {source} FROM officers WHERE {source} IS NOT NULL")).all()
    if not rows:
        return
    key = _blind_index_key()
    for officer_id, value in rows:
        value = bytes(value)
        new = crypto.seal_officer_index(key, value) if to_sealed else crypto.open_officer_index(key, value)
        connection.execute(sa.text(f"UPDATE officers SET {target} = :v WHERE id = :id"), {"v": new, "id": officer_id})


def upgrade():
    op.add_column("officers", sa.Column("staff_index_sealed", sa.LargeBinary(), nullable=True))
    _seal_officer_indexes(to_sealed=True)
    op.drop_index("ix_officers_staff_number_index", table_name="officers")
    op.drop_column("officers", "staff_number_index")  # SQLite 3.35+ drops a column in place

    op.create_table(
        "case_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_case_conflicts_report_id_reports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_conflicts")),
        sa.UniqueConstraint("report_id", "tag", name=op.f("uq_case_conflicts_report_id")),
    )
    op.create_index(op.f("ix_case_conflicts_tag"), "case_conflicts", ["tag"], unique=False)

    op.add_column("queues", sa.Column("key_generation", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("reports", sa.Column("queue_key_generation", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "queue_key_generations",
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("private_key_for_recovery", sa.LargeBinary(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_queue_key_generations_queue_id_queues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("queue_id", "generation", name=op.f("pk_queue_key_generations")),
    )
    with op.batch_alter_table("queue_memberships") as batch_op:
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint("uq_queue_memberships_officer_id", type_="unique")
        batch_op.create_unique_constraint("uq_queue_memberships_officer_id", ["officer_id", "queue_id", "generation"])


def downgrade():
    with op.batch_alter_table("queue_memberships") as batch_op:
        batch_op.drop_constraint("uq_queue_memberships_officer_id", type_="unique")
    op.execute("DELETE FROM queue_memberships WHERE generation <> 1")  # later generations cannot be kept
    with op.batch_alter_table("queue_memberships") as batch_op:
        batch_op.create_unique_constraint("uq_queue_memberships_officer_id", ["officer_id", "queue_id"])
        batch_op.drop_column("generation")
    op.drop_table("queue_key_generations")
    # In place, never by batch: a batch copy of `reports` would drop its triggers (migration 0009).
    op.drop_column("reports", "queue_key_generation")
    op.drop_column("queues", "key_generation")
    op.drop_index(op.f("ix_case_conflicts_tag"), table_name="case_conflicts")
    op.drop_table("case_conflicts")
    op.add_column("officers", sa.Column("staff_number_index", sa.LargeBinary(length=32), nullable=True))
    _seal_officer_indexes(to_sealed=False)
    op.create_index("ix_officers_staff_number_index", "officers", ["staff_number_index"], unique=False)
    op.drop_column("officers", "staff_index_sealed")
