"""`flask portal ...` commands. Each exits non-zero with a one-line reason on bad input.

The group is made here and given the commands of its modules: instance (init), demo_cases, accounts, access,
reminders (send-reminders, and the outbox's worker), audit, data and seed; what they share is in common. The
synthetic-data generator is loaded only by the `seed` command itself.
"""

from __future__ import annotations

from flask.cli import AppGroup

from portal.cli import access, accounts, audit, data, demo_cases, instance, reminders, seed

portal_cli = AppGroup("portal", help="Operate the concern portal.")

COMMANDS = (
    instance.init_command,
    demo_cases.demo_command,
    accounts.create_user_command,
    accounts.grant_command,
    accounts.reset_password_command,
    reminders.send_reminders_command,
    reminders.worker_command,
    audit.verify_audit_command,
    access.revoke_command,
    access.disable_user_command,
    access.rewrap_command,
    access.routing_command,
    data.import_workforce_command,
    data.import_cases_command,
    data.stats_command,
    data.refresh_figures_command,
    seed.seed_command,
)
for command in COMMANDS:
    portal_cli.add_command(command)
