"""The codes the portal stores and counts by: one list of each, used by the forms, the workflow, the importers,
the figures and the database's own CHECK constraints (migration 0013_code_constraints holds the lists as they were
that day; tests/storage/test_constraints.py fails when a list here changes without a migration that follows it).
"""

from __future__ import annotations

# A case's stages (portal.core.workflow says which may follow which and what each means for the reporter).
STATES = ("received", "acknowledged", "assessment", "investigation", "referred", "resolved", "closed")
FINAL_STATES = ("resolved", "closed")

# How the reporter chose to be known, with the words the report form shows.
MODES: dict[str, tuple[str, str]] = {
    "anonymous": (
        "Anonymously",
        "We do not ask who you are and keep nothing that identifies you. You follow your report with "
        "the receipt you get at the end.",
    ),
    "confidential": (
        "Confidentially",
        "You tell us who you are. Your name is locked away with your report: only the unit handling it "
        "can see it, and it is not shared without telling you first.",
    ),
    "named": (
        "Openly, with your name",
        "You tell us who you are and you are happy for your name to be used while the concern is dealt with.",
    ),
}

# Where a case came from: the report form, the legacy-system importer, the synthetic-data generator
# (`flask portal seed`) or the demo cases (`flask portal demo`).
SOURCES = {
    "portal": "Made through the portal",
    "import": "Imported from the legacy system",
    "seed": "Synthetic data",
    "demo": "Demo case",
}

# Outcome codes a triage officer records.
SEVERITIES = {
    "nfa": "No further action",
    "practice-requiring-improvement": "Practice requiring improvement",
    "misconduct": "Misconduct",
    "gross-misconduct": "Gross misconduct",
}
FINDINGS = {
    "case-to-answer": "Case to answer",
    "no-case-to-answer": "No case to answer",
    "not-investigated": "Not investigated",
}
SANCTIONS = {
    "none": "None",
    "reflective-practice": "Reflective practice",
    "management-advice": "Management advice",
    "written-warning": "Written warning",
    "final-written-warning": "Final written warning",
    "dismissal": "Dismissal",
}

# Staff roles, with the words people read.
ROLES = {"triage": "Triage officer", "supervisor": "Supervisor", "admin": "Administrator"}

# The workforce directory's ethnicity groups, in the order the figures show them (the review's groups).
ETHNICITY_GROUPS = ("White", "Black", "Asian", "Mixed", "Other", "Not stated")
