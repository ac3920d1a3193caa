"""one precomputation layer for the oversight figures: the snapshots of migration 0006 go, the running totals stay

Revision ID: 0014_one_figures_layer
Revises: 0013_code_constraints

The figures had two layers kept by triggers: whole snapshots served while `figures_version` stood still
(0006), and running totals of the all-time sums (0009). The running totals alone answer the dashboard's first
view after a change in well under a second at a million cases (bench/RESULTS.md), so the snapshots, their
version counter and the triggers that bumped it are dropped; every write to a report or the directory now
fires one set of figures triggers, not two. Downgrading makes 0006's tables and triggers again, exactly as
0006 made them (its own upgrade is run), with the version at 0 and no snapshot: nothing stale can be served.
"""

import importlib.util
from pathlib import Path

revision = "0014_one_figures_layer"
down_revision = "0013_code_constraints"
branch_labels = None
depends_on = None


def _snapshots_migration():
    """Migration 0006 itself, loaded from its file (revision files are not a package)."""
    path = Path(__file__).with_name("0006_figures_snapshots.py")
    spec = importlib.util.spec_from_file_location("portal_migration_0006", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade():
    # What 0006's downgrade drops, in the same order: its triggers, its function, its two tables.
    _snapshots_migration().downgrade()


def downgrade():
    _snapshots_migration().upgrade()
