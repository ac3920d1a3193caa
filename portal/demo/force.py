"""The synthetic force and the review's published figures the generated cases follow (docs/DESIGN.md, findings
1-8; the interim letter of 17 October 2022)."""

from __future__ import annotations

from portal.domain.reference_data import COMMANDS

YEARS = 9  # received dates spread over nine years up to today (the review's data: 2013-2022)
HEADCOUNT_MIN = 2_000
HEADCOUNT_CAP = 350_000

# Workforce make-up of a large UK force (officers and staff), ethnicity groups of docs/SPEC.md.
ETHNICITY_SHARES = {"White": 0.78, "Black": 0.055, "Asian": 0.09, "Mixed": 0.04, "Other": 0.015, "Not stated": 0.02}
# Finding 7: likelihood of having allegations brought, relative to White staff.
ALLEGATION_RELATIVE = {"White": 1.0, "Black": 1.81, "Asian": 1.55, "Mixed": 1.35, "Other": 1.25, "Not stated": 1.0}
# Finding 8: likelihood of being subject to a Regulation 13 case, relative to White probationers.
REG13_RELATIVE = {"White": 1.0, "Black": 2.26, "Asian": 2.23, "Mixed": 1.6, "Other": 1.5, "Not stated": 1.0}
RANK_SHARES = {
    "constable": 0.52,
    "sergeant": 0.09,
    "inspector": 0.03,
    "chief-inspector": 0.008,
    "superintendent": 0.004,
    "chief-officer": 0.001,
    "staff": 0.347,
}
PROBATIONER_SHARE_OF_CONSTABLES = 0.23  # about 12% of the whole workforce, in their first two years
# Twelve BCUs of about 5.5% each, then the specialist commands.
COMMAND_SHARES = {code: 0.055 for code, _ in COMMANDS[:12]} | {
    "MO": 0.12,
    "SC": 0.08,
    "FS": 0.06,
    "PS": 0.025,
    "CP": 0.055,
}

CATEGORY_SHARES = {
    "bullying": 0.15,
    "discreditable-conduct": 0.15,
    "duties": 0.14,
    "use-of-force": 0.10,
    "corruption": 0.10,
    "discrimination": 0.09,
    "sexual-misconduct": 0.09,
    "criminality": 0.07,
    "domestic-abuse": 0.05,
    "other": 0.06,
}
# Finding 3: case to answer for 20% of discrimination and 29% of sexual misconduct against 33% of all.
CASE_TO_ANSWER = {
    "bullying": 0.33,
    "discreditable-conduct": 0.36,
    "duties": 0.37,
    "use-of-force": 0.28,
    "corruption": 0.40,
    "discrimination": 0.20,
    "sexual-misconduct": 0.29,
    "criminality": 0.42,
    "domestic-abuse": 0.34,
    "other": 0.30,
}
NOT_INVESTIGATED = 0.09  # finding 2: the rest, 55-60%, is "no case to answer"
SUBSTANTIATED_MORE = {"Black": 1.1, "Asian": 1.1}  # finding 7: more likely to have allegations substantiated
REG13_CATEGORIES = {"duties": 0.5, "discreditable-conduct": 0.3, "bullying": 0.1, "other": 0.1}
REG13_CASE_TO_ANSWER = 0.45

# Finding 4: 20% of the people in the system have two or more cases; under 1% of those are dismissed.
REPEAT_SHARE = 0.20
REPEAT_EXTRA_CASES_P = 0.55  # cases beyond the second: geometric, mean (1 - p) / p ~ 0.8
REPEAT_MAX_CASES = 15
REPEAT_DISMISSAL_FACTOR = 0.25  # a repeat subject is dismissed, if at all, only at their last case
NAME_ONLY_SHARE = 0.06  # the reporter gave a name but no staff number
UNKNOWN_SUBJECT_SHARE = 0.03  # neither: "a sergeant on my team"
IN_DIRECTORY_SHARE = 0.65  # subjects still in the force; the others have left (or were dismissed)
MAX_BASE_ALLEGATION_RATE = 0.35  # caps the share of White staff with an allegation when N is large
REG13_FACTOR = 0.5  # White probationers' Regulation 13 rate, as a share of White staff's allegation rate

# Finding 1: mean ~400 days to finalise, ~20% over two years (a mixture, tuned with the censoring by
# today's date: a case not finished by today is open).
LONG_CASE_SHARE = 0.26
SHORT_MEDIAN_DAYS = 245.0
SHORT_SIGMA = 0.7
LONG_TAIL_MEAN_DAYS = 300.0
MAX_DAYS = 2600
REG13_MEDIAN_DAYS = 120.0

# Finding 6: dismissals for gross misconduct fell over the years; finding 8: 8% of Regulation 13 cases
# in the most recent year ended in dismissal.
GM_DISMISSAL_FIRST_YEAR = 0.50
GM_DISMISSAL_LAST_YEAR = 0.15
REG13_DISMISSAL_LATEST = 0.08
REG13_DISMISSAL_BEFORE = 0.14

MODE_SHARES = {"anonymous": 0.35, "confidential": 0.45, "named": 0.20}
FEAR_OF_REPRISAL = {"anonymous": 0.25, "confidential": 0.15, "named": 0.08}
