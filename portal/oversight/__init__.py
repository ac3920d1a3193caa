"""Oversight: the figures supervisors read, from clear metadata only, and the running totals that keep them fast."""
