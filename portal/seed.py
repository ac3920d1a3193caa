"""Synthetic, realistic data for dashboards and load tests: a workforce directory and sealed cases.

The distributions follow the review's published figures (shared/DESIGN.md, findings 1-8; the interim
letter of 17 October 2022): ~400 days on average to finalise with ~20% over two years, 55-60% "no case
to answer", case to answer for 33% of all allegations but 29% of sexual misconduct and 20% of
discrimination, 20% of subjects with two or more cases and under 1% of them dismissed, Black staff 1.81x
and Asian staff 1.55x as likely as White staff to have allegations (Regulation 13: 2.26x and 2.23x), and
gross misconduct cases with a falling dismissal share.

Every case is sealed like a real one: its own data key, content sealed with portal.intake's functions,
the key wrapped to its queue and to the recovery key (no receipt: nobody can open a seeded case from the
status page). What is in clear is what intake puts in clear.

Speed (1,000,000 cases in minutes on two cores): the plan (every clear value) is made in this process
from one seeded random generator, so a seed gives the same force and the same cases; the sealing, which
is nearly all the cost (two X25519 sealed boxes per case), runs in worker processes; rows go in with
psycopg's binary COPY on PostgreSQL and executemany on SQLite, in one transaction, never one ORM object
per row. Case references come in blocks: one counter update per year.
"""

from __future__ import annotations

import bisect
import json
import math
import multiprocessing
import os
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, LargeBinary, String, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import bulk, crypto, intake, routing, sealing
from .models import CaseEvent, Queue, ReferenceCounter, Report, WorkforceMember, new_id, utcnow
from .secrets import ServerSecrets
from .setup import COMMANDS

SOURCE = "seed"
MAX_REPORTS = 5_000_000  # references have six digits a year; nine years of five million still fit

# ---------------------------------------------------------------- the force and the review's figures

YEARS = 9  # received dates spread over nine years up to today (the review's data: 2013-2022)
HEADCOUNT_MIN = 2_000
HEADCOUNT_CAP = 350_000

# Workforce make-up of a large UK force (officers and staff), ethnicity groups of shared/SPEC.md.
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

# ---------------------------------------------------------------- names, numbers and words

FIRST_NAMES = (
    "Aaliyah Abdul Adaeze Adam Adebayo Aditi Ahmed Aisha Alan Alex Alice Amara Amir Amy Andrew Angela Anil Anna "
    "Arjun Asha Ayesha Barbara Ben Bilal Bola Callum Carla Caroline Catherine Chanel Charlotte Chidi Chloe Chris "
    "Claire Connor Craig Dalia Daniel Darren Deepa Dev Dominic Donna Duncan Ebony Eleanor Emeka Emily Emma Eric "
    "Esther Fatima Femi Fiona Folake Gareth Gemma Georgia Gurpreet Hamza Hannah Harpreet Harvey Hassan Helen Hollie "
    "Ibrahim Imran Isabel Jack Jade Jamal Jasmine Jason Jaspreet Jennifer Joanne Jordan Joseph Joy Julie Karen "
    "Kareem Kate Kayode Keisha Kelly Kemi Kevin Kofi Lakshmi Laura Leah Liam Lisa Lorna Lucy Mandeep Marcus "
    "Maria Mark Martin Maya Mehmet Michelle Mohammed Nadia Naomi Natasha Neil Nia Nicola Nikhil Nkechi Oliver "
    "Olivia Omar Paul Pooja Precious Priya Rachel Rahul Rajesh Rebecca Rhys Richard Rosa Ruth Ryan Sadia Samir "
    "Sandeep Sarah Scott Shanice Simon Sophie Stacey Stephen Stuart Sunil Tanisha Tariq Temi Tom Tunde Usha "
    "Vanessa Vikram Wayne Yasmin Yusuf Zainab Zara Zoe"
).split()
LAST_NAMES = (
    "Abbott Achebe Adams Adeyemi Afolabi Ahmadi Akhtar Ali Allen Anderson Appiah Armstrong Asante Atkinson Bailey "
    "Baker Banerjee Barker Barnes Begum Bell Bennett Bhatt Bishop Boateng Bond Bose Bradley Brooks Brown Burke "
    "Butler Campbell Carter Chambers Chaudhry Chen Chowdhury Clarke Cole Collins Cook Cooper Cox Cunningham "
    "Davies Dawson Desai Dixon Doherty Douglas Doyle Dunn Edwards Ellis Evans Farah Fernandes Fisher Fleming "
    "Fletcher Foster Fox Francis Fraser Gardner Ghosh Gibson Gill Gordon Graham Grant Gray Green Griffiths Gupta "
    "Hall Hamilton Harris Hart Harvey Hayes Henry Hill Holmes Hughes Hunt Hussain Iqbal Jackson Jama Jenkins "
    "Johnson Jones Joshi Kamara Kaur Kelly Kennedy Khan Khanom King Knight Kumar Lawrence Lewis Lloyd Malik "
    "Marshall Mason Matthews Mensah Miah Miller Mills Mistry Mitchell Moore Morgan Morris Murphy Murray Nair "
    "Nwosu Obi Odhiambo Okafor Okeke Oladipo Osei Owen Owusu Palmer Parker Patel Payne Pearson Perry Phillips "
    "Powell Price Qureshi Rahman Rai Reid Reynolds Richards Roberts Robinson Rogers Rose Russell Saini Sandhu "
    "Saunders Scott Sesay Shah Sharma Shaw Simpson Singh Smith Spencer Stevens Stewart Stone Sutton Taylor "
    "Thomson Turner Uddin Vaughan Verma Walker Wallace Walsh Ward Watson Webb Wells West White Wilkinson Williams "
    "Wilson Wood Wright Yeboah Young"
).split()
_INITIALS = "ABCDEFGHJKLMNPRSTW"
# One or two middle initials, the pair in alphabetical order: names normalise with their words sorted,
# so "J K" and "K J" would be the same person to the blind index.
MIDDLES = list(_INITIALS) + [f"{a} {b}" for i, a in enumerate(_INITIALS) for b in _INITIALS[i + 1 :]]
NAME_SPACE = len(FIRST_NAMES) * len(MIDDLES) * len(LAST_NAMES)
STAFF_NUMBER_SPACE = 10_000_000
STATIONS = (
    "Brixton Charing Cross Croydon Ealing Hackney Hammersmith Holborn Ilford Islington Kentish Town Lewisham "
    "Lambeth Paddington Peckham Romford Southwark Stoke Newington Sutton Tottenham Walworth Wembley Wimbledon "
    "Woolwich"
).split()
PLACES = (
    "front office",
    "custody suite",
    "parade room",
    "canteen",
    "car park",
    "patrol car",
    "team office",
    "training centre",
    "a pub after work",
    "a team messaging group",
    "social media",
    "the locker room",
)
SUMMARIES = {
    "sexual-misconduct": (
        "Sexual comments and unwanted touching of a junior colleague",
        "Officer pursuing a victim of crime for a relationship",
        "Explicit images shared in a team chat",
        "Repeated requests to meet a probationer after shifts",
    ),
    "domestic-abuse": (
        "Controlling behaviour towards a partner who is also in the force",
        "Officer reported for abuse at home, still on frontline duties",
        "Threats made to an ex-partner using police information",
    ),
    "discrimination": (
        "Racist remarks about a colleague in the parade room",
        "Misogynistic jokes in team briefings",
        "Homophobic messages in a team chat",
        "Colleague mocked for a disability in front of the team",
        "Different treatment of Black and Asian officers on postings",
    ),
    "bullying": (
        "Repeated belittling of a staff member in team meetings",
        "Supervisor singling out a colleague for unfair tasks",
        "Victimisation after a grievance was raised",
        "Shouting and intimidation on night shifts",
    ),
    "corruption": (
        "Police systems searched for a friend's benefit",
        "Undeclared association with a known criminal",
        "Overtime claimed for hours not worked",
        "Information passed to a journalist for payment",
    ),
    "criminality": (
        "Drink driving off duty",
        "Theft of seized property",
        "Assault outside a nightclub while off duty",
        "Possession of controlled drugs",
    ),
    "use-of-force": (
        "Excessive force during an arrest",
        "Handcuffed detainee struck in custody",
        "Taser used on a compliant person",
    ),
    "discreditable-conduct": (
        "Offensive posts on social media",
        "Abusive behaviour towards members of the public",
        "Misleading statement given to a supervisor",
        "Drunk and disorderly at a police social event",
    ),
    "duties": (
        "Body-worn video routinely switched off",
        "Calls left unanswered on shift",
        "Repeatedly late and absent without leave",
        "Property records not completed",
    ),
    "other": (
        "Concern about a colleague's conduct at a training course",
        "Confidential information left on a shared desk",
        "Unauthorised secondary employment",
    ),
}
DETAIL_OPENINGS = (
    "This has been going on for several months.",
    "I saw this myself on more than one occasion.",
    "Several colleagues have noticed but nobody has said anything.",
    "It happened during a late turn and there were others present.",
    "I raised it informally with a supervisor but nothing changed.",
    "I am worried about what will happen if I am identified.",
)
DETAIL_MIDDLES = (
    "The person laughed it off when challenged and said it was banter.",
    "It has affected the team and one colleague has gone off sick.",
    "There are messages on a team chat that show it.",
    "A member of the public complained about the same behaviour.",
    "It seems to happen mostly when senior officers are not around.",
    "I have kept notes of dates and times.",
    "The person has been spoken to before about similar things.",
)
DETAIL_CLOSINGS = (
    "I would like someone to look at this properly.",
    "I can give more details if you ask me questions here.",
    "Other people on the team may be willing to speak to you.",
    "I do not want this to be dealt with by my own command.",
)
RATIONALES = {
    "nfa": "No breach of the standards is indicated on the information available.",
    "practice-requiring-improvement": "Performance below standard; reflective practice is proportionate.",
    "misconduct": "A breach of the standards of professional behaviour that would justify disciplinary action.",
    "gross-misconduct": "A breach so serious that dismissal would be justified if it is proven.",
}


def _cumulative(shares: dict[str, float]) -> tuple[list[str], list[float]]:
    keys = list(shares)
    total, cumulative = 0.0, []
    for key in keys:
        total += shares[key]
        cumulative.append(total)
    return keys, [c / total for c in cumulative]


def _chooser(shares: dict[str, float]) -> Callable[[random.Random], str]:
    keys, cumulative = _cumulative(shares)
    last = len(keys) - 1

    def choose(rng: random.Random) -> str:
        return keys[min(bisect.bisect_right(cumulative, rng.random()), last)]

    return choose


def _scramble(serial: int, space: int, salt: int) -> int:
    """A bijection on [0, space): neighbouring serials get unrelated names and numbers."""
    multiplier = 7_919 if space % 7_919 else 104_729
    while math.gcd(multiplier, space) != 1:
        multiplier += 2
    return (serial * multiplier + salt) % space


def staff_number_for(person: int, salt: int) -> str:
    """A synthetic staff number, unique per person: 'MP' and seven digits."""
    return f"MP{_scramble(person, STAFF_NUMBER_SPACE, salt):07d}"


def name_for(person: int, salt: int) -> str:
    """A synthetic name, unique per person up to NAME_SPACE and still unique once normalised."""
    code = _scramble(person % NAME_SPACE, NAME_SPACE, salt)
    code, first = divmod(code, len(FIRST_NAMES))
    last, middle = divmod(code, len(MIDDLES))
    name = f"{FIRST_NAMES[first]} {MIDDLES[middle]} {LAST_NAMES[last]}"
    return name if person < NAME_SPACE else f"{name} {person // NAME_SPACE + 1}"


def headcount_for(reports: int) -> int:
    return min(max(HEADCOUNT_MIN, reports // 3), HEADCOUNT_CAP)


# ---------------------------------------------------------------- the plan (clear values only)


@dataclass
class Workforce:
    ethnicity: list[str]
    rank: list[str]
    command: list[str]
    probationer: list[bool]
    joined: list[date]

    def __len__(self) -> int:
        return len(self.ethnicity)


def plan_workforce(rng: random.Random, headcount: int, today: date) -> Workforce:
    """The directory: ethnicity groups in the force's proportions, ranks, commands, probationers."""
    ethnicity = _chooser(ETHNICITY_SHARES)
    rank = _chooser(RANK_SHARES)
    command = _chooser(COMMAND_SHARES)
    force = Workforce([], [], [], [], [])
    for _ in range(headcount):
        band = rank(rng)
        probationer = band == "constable" and rng.random() < PROBATIONER_SHARE_OF_CONSTABLES
        days = rng.randint(10, 729) if probationer else rng.randint(730, 35 * 365)
        force.ethnicity.append(ethnicity(rng))
        force.rank.append(band)
        force.command.append(command(rng))
        force.probationer.append(probationer)
        force.joined.append(today - timedelta(days=days))
    return force


@dataclass(frozen=True)
class Subject:
    """Someone cases are about. person: a serial (< headcount: in the directory); -1 when unknown."""

    person: int
    cases: int
    has_number: bool = True
    has_name: bool = True
    reg13: bool = False


@dataclass(slots=True)
class CasePlan:
    """Every clear value of one case, and what the sealing worker needs to write its content."""

    received_at: datetime
    category: str
    mode: str
    fear_of_reprisal: bool
    person: int  # -1: unknown subject
    has_number: bool
    has_name: bool
    command: str | None
    rank_band: str | None
    ethnicity: str | None
    probationer: bool | None
    state: str
    acknowledged_at: datetime | None
    finalised_at: datetime | None
    next_update_due_at: datetime
    severity: str | None
    finding: str | None
    sanction: str | None
    reg13: bool
    queue: str
    routing_reasons: list[str]
    iopc_flags: list[str]
    earlier_concerns: int
    pattern_flags: list[str]
    reference: str = ""


@dataclass
class Plan:
    workforce: Workforce
    subjects: int  # people the cases are about (by staff number, else by name)
    cases: list[CasePlan]
    salt: int


class _Earlier:
    """What portal.patterns.assess reads of an earlier concern."""

    __slots__ = ("received_at", "category")

    def __init__(self, received_at: datetime, category: str) -> None:
        self.received_at = received_at
        self.category = category


def _pattern_assessor(session: Session) -> Callable[[list[_Earlier], datetime], list[str]]:
    """portal.patterns' early-intervention flags when the module is there; none otherwise."""
    try:
        from . import patterns
    except ImportError:  # pragma: no cover - patterns arrives with the early-intervention work
        return lambda earlier, now: []
    rules = patterns.load_rules(session)
    return lambda earlier, now: list(patterns.assess(earlier, now, rules))  # type: ignore[arg-type]


class _Router:
    """portal.routing over the rules in the database, memoised: routing is a pure function of the facts."""

    def __init__(self, session: Session, queue_codes: Sequence[str]) -> None:
        self.rules = intake.load_rules(session)
        self.queues = set(queue_codes)
        self.accepts = {f.name for f in fields(routing.ReportFacts)}
        self.cache: dict[tuple, routing.RoutingDecision] = {}

    def route(
        self, category: str, command: str | None, fear: bool, earlier: int, flagged: bool
    ) -> routing.RoutingDecision:
        key = (category, command, fear, earlier, flagged)
        decision = self.cache.get(key)
        if decision is None:
            values = {
                "category": category,
                "subject_command": command,
                "fear_of_reprisal": fear,
                "earlier_concerns": earlier,
                "pattern_flagged": flagged,
                "corroborates_held": False,
            }
            facts = routing.ReportFacts(**{k: v for k, v in values.items() if k in self.accepts})
            decision = self.cache[key] = routing.route_report(facts, self.rules, self.queues)
        return decision


class _Quota:
    """Systematic sampling: each stratum's share of 'yes' stays within one of its target, however small."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.level: dict[Any, float] = {}

    def draw(self, stratum: Any, probability: float, *, start: float | None = None) -> bool:
        """start: the stratum's first level; random by default, 0 for rare events that must not round up."""
        level = self.level.get(stratum)
        if level is None:
            level = self.rng.random() if start is None else start
        level += probability
        hit = level >= 1.0
        self.level[stratum] = level - 1.0 if hit else level
        return hit


def _allocate_people(rng: random.Random, force: Workforce, in_directory: int) -> tuple[list[int], set[int]]:
    """Choose who in the directory has allegations, so that each group's rate is its relative rate times
    the White rate (finding 7), and which probationers have a Regulation 13 case (finding 8)."""
    groups: dict[str, list[int]] = {g: [] for g in ETHNICITY_SHARES}
    for person, group in enumerate(force.ethnicity):
        groups.setdefault(group, []).append(person)
    weighted = sum(ALLEGATION_RELATIVE.get(g, 1.0) * len(members) for g, members in groups.items())
    base = min(in_directory / weighted if weighted else 0.0, MAX_BASE_ALLEGATION_RATE)
    reg13_base = base * REG13_FACTOR
    chosen: list[int] = []
    reg13: set[int] = set()
    for group, members in groups.items():
        wanted = min(len(members), round(base * ALLEGATION_RELATIVE.get(group, 1.0) * len(members)))
        probationers = [p for p in members if force.probationer[p]]
        on_reg13 = min(wanted, round(reg13_base * REG13_RELATIVE.get(group, 1.0) * len(probationers)))
        reg13_people = rng.sample(probationers, on_reg13)
        taken = set(reg13_people)
        others = rng.sample([p for p in members if p not in taken], wanted - on_reg13)
        chosen.extend(reg13_people)
        chosen.extend(others)
        reg13.update(reg13_people)
    rng.shuffle(chosen)
    return chosen, reg13


def _subjects(rng: random.Random, reports: int, force: Workforce) -> list[Subject]:
    """Who the cases are about: 20% of the people with two or more cases (finding 4), some only named,
    some unknown; of those with a staff number, most still in the directory, the rest leavers."""
    unknown = round(reports * UNKNOWN_SUBJECT_SHARE)
    name_only = round(reports * NAME_ONLY_SHARE)
    numbered_cases = reports - unknown - name_only
    mean_repeat = 2 + (1 - REPEAT_EXTRA_CASES_P) / REPEAT_EXTRA_CASES_P
    # singles + repeaters * mean = numbered cases; repeaters = share * (singles + repeaters + name-only)
    repeaters = round((numbered_cases + name_only) / ((1 - REPEAT_SHARE) / REPEAT_SHARE + mean_repeat))
    counts: list[int] = []
    for _ in range(repeaters):
        extra = 0
        while rng.random() > REPEAT_EXTRA_CASES_P and extra < REPEAT_MAX_CASES - 2:
            extra += 1
        counts.append(2 + extra)
    while counts and sum(counts) > numbered_cases:
        counts.pop()
    counts.extend([1] * (numbered_cases - sum(counts)))
    rng.shuffle(counts)
    in_directory = min(round(IN_DIRECTORY_SHARE * len(counts)), len(force))
    chosen, reg13 = _allocate_people(rng, force, in_directory)
    subjects: list[Subject] = []
    leaver = len(force)
    for index, cases in enumerate(counts):
        if index < len(chosen):
            person = chosen[index]
            subjects.append(Subject(person, cases, reg13=person in reg13))
        else:
            subjects.append(Subject(leaver, cases))
            leaver += 1
    for _ in range(name_only):
        subjects.append(Subject(leaver, 1, has_number=False))
        leaver += 1
    for _ in range(unknown):
        subjects.append(Subject(-1, 1, has_number=False, has_name=False))
    return subjects


def _days_to_finalise(rng: random.Random, reg13: bool) -> float:
    if reg13:
        return min(rng.lognormvariate(math.log(REG13_MEDIAN_DAYS), 0.6), 700.0)
    if rng.random() < LONG_CASE_SHARE:
        return min(731.0 + rng.expovariate(1.0 / LONG_TAIL_MEAN_DAYS), MAX_DAYS)
    while True:
        days = rng.lognormvariate(math.log(SHORT_MEDIAN_DAYS), SHORT_SIGMA)
        if 5.0 <= days <= 730.0:
            return days


def plan_cases(
    reports: int,
    seed: int,
    now: datetime,
    router: _Router,
    assess: Callable[[list[_Earlier], datetime], list[str]],
    *,
    acknowledge_days: int,
    update_days: int,
) -> Plan:
    """Every clear value of the force and of `reports` cases, from one generator seeded with `seed`."""
    rng = random.Random(seed)
    salt = rng.randrange(1 << 30)
    today = now.date()
    force = plan_workforce(rng, headcount_for(reports), today)
    subjects = _subjects(rng, reports, force)
    category_of = _chooser(CATEGORY_SHARES)
    reg13_category_of = _chooser(REG13_CATEGORIES)
    mode_of = _chooser(MODE_SHARES)
    command_of = _chooser(COMMAND_SHARES)
    quota = _Quota(rng)
    span = timedelta(days=YEARS * 365)
    start = now - span
    first_year, last_year = start.year, now.year
    gm_trend = (GM_DISMISSAL_LAST_YEAR - GM_DISMISSAL_FIRST_YEAR) / max(1, last_year - first_year)
    # Dismissed people have left: only leavers (and named-only subjects) are dismissed, more often so
    # that the force-wide gross-misconduct dismissal share still follows the trend.
    eligible_cases = sum(s.cases for s in subjects if s.person >= len(force))
    eligible_share = max(eligible_cases / max(reports, 1), 0.05)
    update = timedelta(days=update_days)
    cases: list[CasePlan] = []
    for subject in subjects:
        person = subject.person
        in_directory = 0 <= person < len(force)
        if in_directory:
            command, rank_band = force.command[person], force.rank[person]
            ethnicity, probationer = force.ethnicity[person], force.probationer[person]
            joined = datetime.combine(force.joined[person], datetime.min.time())
            earliest = max(start, joined + timedelta(days=1))
        else:
            command = command_of(rng) if person >= 0 or rng.random() < 0.7 else None
            rank_band = ethnicity = probationer = None
            earliest = start
        window = (now - earliest).total_seconds()
        moments = sorted(
            earliest + timedelta(seconds=int(window * (1.0 - rng.random() ** 1.07))) for _ in range(subject.cases)
        )
        earlier: list[_Earlier] = []
        for number, received in enumerate(moments):
            reg13 = subject.reg13 and number == 0
            category = reg13_category_of(rng) if reg13 else category_of(rng)
            mode = mode_of(rng)
            fear = rng.random() < FEAR_OF_REPRISAL[mode]
            flags = assess(earlier, received) if earlier else []
            decision = router.route(category, command, fear, len(earlier), bool(flags))
            days = _days_to_finalise(rng, reg13)
            finalised = received + timedelta(days=days)
            acknowledged: datetime | None = received + timedelta(days=rng.uniform(0.5, 12.0))
            severity = finding = sanction = None
            if finalised <= now:
                state = "closed" if now - finalised > timedelta(days=60) else "resolved"
                final: datetime | None = finalised
                next_due = finalised + update
                boost = SUBSTANTIATED_MORE.get(ethnicity or "", 1.0)
                if reg13:
                    answer = quota.draw("reg13", REG13_CASE_TO_ANSWER)
                else:
                    answer = quota.draw(category, CASE_TO_ANSWER[category] * boost)
                if answer:
                    finding = "case-to-answer"
                    roll = rng.random()
                    serious = category in routing.SERIOUS_CATEGORIES
                    gm_share = 0.45 if serious else 0.25
                    severity = (
                        "gross-misconduct"
                        if roll < gm_share
                        else ("misconduct" if roll < 0.85 else "practice-requiring-improvement")
                    )
                    sanction = _sanction(
                        rng,
                        quota,
                        severity,
                        reg13=reg13,
                        year=received.year,
                        latest_year=last_year,
                        p_gm=(GM_DISMISSAL_FIRST_YEAR + gm_trend * (received.year - first_year)) / eligible_share,
                        dismissable=reg13
                        or (person >= len(force) and (subject.cases == 1 or number == subject.cases - 1)),
                        repeat=subject.cases > 1,
                    )
                elif rng.random() < NOT_INVESTIGATED / (1 - CASE_TO_ANSWER.get(category, 0.33)):
                    finding, severity, sanction = "not-investigated", "nfa", "none"
                else:
                    finding, sanction = "no-case-to-answer", "none"
                    roll = rng.random()
                    severity = (
                        "nfa"
                        if roll < 0.4
                        else (
                            "practice-requiring-improvement"
                            if roll < 0.6
                            else ("misconduct" if roll < 0.9 else "gross-misconduct")
                        )
                    )
            else:
                final = None
                age = now - received
                roll = rng.random()
                if age < timedelta(days=14) and roll < 0.6:
                    state, acknowledged = "received", None
                elif age < timedelta(days=60):
                    state = "acknowledged" if roll < 0.5 else "assessment"
                elif category in routing.IOPC_FLAGS and roll < 0.25:
                    state = "referred"
                else:
                    state = "assessment" if roll < 0.45 else "investigation"
                if acknowledged is not None and acknowledged > now:
                    acknowledged = received + (now - received) / 2
                if state in ("investigation", "referred") and rng.random() < 0.6:
                    severity = "gross-misconduct" if rng.random() < 0.3 else "misconduct"
                last_contact = max(received, now - timedelta(days=rng.uniform(0.0, 40.0)))
                next_due = last_contact + update
            cases.append(
                CasePlan(
                    received_at=received,
                    category=category,
                    mode=mode,
                    fear_of_reprisal=fear,
                    person=person,
                    has_number=subject.has_number,
                    has_name=subject.has_name,
                    command=command,
                    rank_band=rank_band,
                    ethnicity=ethnicity,
                    probationer=probationer,
                    state=state,
                    acknowledged_at=acknowledged,
                    finalised_at=final,
                    next_update_due_at=next_due,
                    severity=severity,
                    finding=finding,
                    sanction=sanction,
                    reg13=reg13,
                    queue=decision.queue,
                    routing_reasons=decision.reasons,
                    iopc_flags=routing.iopc_referral_flags(category),
                    earlier_concerns=len(earlier),
                    pattern_flags=flags,
                )
            )
            earlier.append(_Earlier(received, category))
    cases.sort(key=lambda case: case.received_at)
    numbered = sum(1 for s in subjects if s.person >= 0)
    return Plan(force, numbered, cases, salt)


def _sanction(
    rng: random.Random,
    quota: _Quota,
    severity: str,
    *,
    reg13: bool,
    year: int,
    latest_year: int,
    p_gm: float,
    dismissable: bool,
    repeat: bool,
) -> str:
    if reg13:
        # The review's figure is a share of all Regulation 13 cases; only those with a case to answer end so.
        share = REG13_DISMISSAL_LATEST if year >= latest_year else REG13_DISMISSAL_BEFORE
        if quota.draw(("reg13-dismissal", year >= latest_year), share / REG13_CASE_TO_ANSWER):
            return "dismissal"
        return "written-warning" if rng.random() < 0.5 else "management-advice"
    if severity == "practice-requiring-improvement":
        return "reflective-practice"
    if severity == "misconduct":
        roll = rng.random()
        return "management-advice" if roll < 0.4 else ("written-warning" if roll < 0.85 else "final-written-warning")
    if repeat:  # rare (finding 4): one stratum, rounding down, so that a small force has none
        if dismissable and quota.draw("gm-dismissal-repeat", min(0.95, p_gm * REPEAT_DISMISSAL_FACTOR), start=0.0):
            return "dismissal"
    elif dismissable and quota.draw(("gm-dismissal", year), min(0.95, p_gm)):
        return "dismissal"
    return "final-written-warning" if rng.random() < 0.7 else "written-warning"


# ---------------------------------------------------------------- sealing (worker processes)

REPORT_COLUMNS = (
    "id",
    "reference",
    "received_at",
    "mode",
    "category",
    "state",
    "queue_id",
    "routing_reasons",
    "iopc_flags",
    "iopc_flagged",
    "fear_of_reprisal",
    "source",
    "subject_command",
    "subject_rank_band",
    "subject_ethnicity",
    "subject_probationer",
    "subject_staff_index",
    "subject_name_index",
    "earlier_concerns",
    "pattern_flags",
    "held",
    "acknowledge_due_at",
    "next_update_due_at",
    "acknowledged_at",
    "finalised_at",
    "reporter_wants_email",
    "severity",
    "finding",
    "sanction",
    "reg13",
    "severity_rationale_sealed",
    "dek_for_queue",
    "dek_for_recovery",
    *(f"{name}_sealed" for name in sealing.REPORT_FIELDS),
)
EVENT_COLUMNS = ("report_id", "at", "kind", "state")
WORKFORCE_COLUMNS = (
    "staff_number_index",
    "name_index",
    "command",
    "rank_band",
    "ethnicity",
    "probationer",
    "joined_on",
    "updated_at",
)


class _Sealable:
    """Stands in for a Report row for intake's sealing functions: an id, and attributes they set."""

    def __init__(self, report_id: str) -> None:
        self.id = report_id


class _QueueKey:
    def __init__(self, public_key: bytes) -> None:
        self.public_key = public_key


@dataclass
class SealingContext:
    """What a sealing worker needs: keys (all public, or the blind-index key), and how to write values."""

    dialect: str
    queues: dict[str, tuple[int, bytes]]  # code -> (id, public key)
    recovery_public_key: bytes
    blind_index_key: bytes
    salt: int
    seed: int
    acknowledge_days: int
    extra_report_defaults: dict[str, Any]


_context: SealingContext | None = None
# The plan, set before forking the workers: they read their chunks from it instead of having each
# chunk pickled to them (a million plans pickled would cost the writing process ~10 s).
_shared_plan: list[CasePlan] = []
_converters: dict[str, list[tuple[int, Callable[[Any], Any]]]] = {}
_index_cache: dict[int, tuple[bytes | None, bytes | None]] = {}


def _init_worker(context: SealingContext) -> None:
    global _context
    _context = context
    _converters.clear()
    _index_cache.clear()


def _converters_for(table: str, columns: Sequence[str]) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, converter) for the columns whose values need one before they go to the driver: SQLAlchemy's
    own bind processors on SQLite (datetimes and JSON as text), JSON as text for PostgreSQL's COPY."""
    found = _converters.get(table)
    if found is not None:
        return found
    assert _context is not None
    model = {"reports": Report, "case_events": CaseEvent, "workforce": WorkforceMember}[table]
    if _context.dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        dialect: Any = sqlite.dialect()
    else:
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.dialect()
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for position, name in enumerate(columns):
        column = model.__table__.columns[name]
        if isinstance(column.type, JSON):
            converters.append((position, _json_text))  # what SQLAlchemy's JSON type writes, memoised
        elif _context.dialect == "sqlite":
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None and not isinstance(column.type, LargeBinary):
                converters.append((position, processor))
    _converters[table] = converters
    return converters


_json_memo: dict[tuple, str] = {}


def _json_text(value: list[str]) -> str:
    key = tuple(value)
    text = _json_memo.get(key)
    if text is None:
        text = _json_memo[key] = json.dumps(value)
    return text


def _convert(row: tuple, converters: Sequence[tuple[int, Callable[[Any], Any]]]) -> tuple:
    values = list(row)
    for position, converter in converters:
        value = values[position]
        if value is not None:
            values[position] = converter(value)
    return tuple(values)


def _indexes(person: int, has_number: bool, has_name: bool) -> tuple[bytes | None, bytes | None]:
    """A subject's blind indexes, computed once per person per worker."""
    assert _context is not None
    key = person * 4 + has_number * 2 + has_name
    found = _index_cache.get(key)
    if found is None:
        staff = crypto.staff_number_index(_context.blind_index_key, staff_number_for(person, _context.salt))
        name = crypto.name_index(_context.blind_index_key, name_for(person, _context.salt))
        found = _index_cache[key] = (staff if has_number else None, name if has_name else None)
    return found


def _content(rng: random.Random, plan: CasePlan, salt: int) -> dict[str, str]:
    """Synthetic content for one case: what a reporter might write, never real."""
    station = rng.choice(STATIONS)
    details = " ".join(
        (
            rng.choice(DETAIL_OPENINGS),
            rng.choice(DETAIL_MIDDLES),
            rng.choice(DETAIL_MIDDLES),
            rng.choice(DETAIL_CLOSINGS),
        )
    )
    values = {
        "summary": rng.choice(SUMMARIES[plan.category]),
        "details": f"At {station}: {details}",
        "subject_name": name_for(plan.person, salt) if plan.has_name else "",
        "subject_staff_number": staff_number_for(plan.person, salt) if plan.has_number else "",
        "occurred_on": (plan.received_at.date() - timedelta(days=rng.randint(0, 90))).isoformat(),
        "location": f"{station} police station, {rng.choice(PLACES)}" if rng.random() < 0.8 else "",
        "witnesses": "Two colleagues on the same team saw it." if rng.random() < 0.3 else "",
        "reporter_name": "",
        "reporter_contact": "",
    }
    if plan.mode != "anonymous":
        reporter = name_for(rng.randrange(NAME_SPACE), salt ^ 0x5EED)
        values["reporter_name"] = reporter
        if rng.random() < 0.7:
            values["reporter_contact"] = reporter.lower().replace(" ", ".") + "@example.org"
    return values


def seal_chunk(task: tuple[int, int, int, list[CasePlan] | None]) -> tuple[list[tuple], list[tuple]]:
    """Seal one chunk of planned cases: rows for `reports` and for `case_events`, ready for the database.

    task: (chunk number, start, end, the plans or None when a forked worker reads them from _shared_plan).
    """
    assert _context is not None
    number, start, end, given = task
    plans = given if given is not None else _shared_plan[start:end]
    context = _context
    rng = random.Random(context.seed * 1_000_003 + number)
    report_converters = _converters_for("reports", REPORT_COLUMNS + tuple(context.extra_report_defaults))
    event_converters = _converters_for("case_events", EVENT_COLUMNS)
    queue_keys = {code: _QueueKey(key) for code, (_id, key) in context.queues.items()}
    extras = tuple(context.extra_report_defaults.values())
    acknowledge = timedelta(days=context.acknowledge_days)
    reports: list[tuple] = []
    events: list[tuple] = []
    for plan in plans:
        report = _Sealable(new_id())
        sealing.seal_new_case(
            report,
            _content(rng, plan, context.salt),
            queue_keys[plan.queue],
            context.recovery_public_key,
            severity_rationale=RATIONALES[plan.severity] if plan.severity else None,
        )
        rationale = getattr(report, "severity_rationale_sealed", None)
        staff_index, name_index = (
            _indexes(plan.person, plan.has_number, plan.has_name) if plan.person >= 0 else (None, None)
        )
        row = (
            report.id,
            plan.reference,
            plan.received_at,
            plan.mode,
            plan.category,
            plan.state,
            context.queues[plan.queue][0],
            plan.routing_reasons,
            plan.iopc_flags,
            bool(plan.iopc_flags),
            plan.fear_of_reprisal,
            SOURCE,
            plan.command,
            plan.rank_band,
            plan.ethnicity,
            plan.probationer,
            staff_index,
            name_index,
            plan.earlier_concerns,
            plan.pattern_flags,
            False,
            plan.received_at + acknowledge,
            plan.next_update_due_at,
            plan.acknowledged_at,
            plan.finalised_at,
            False,
            plan.severity,
            plan.finding,
            plan.sanction,
            plan.reg13,
            rationale,
            report.dek_for_queue,  # type: ignore[attr-defined]
            report.dek_for_recovery,  # type: ignore[attr-defined]
            *(getattr(report, f"{name}_sealed") for name in sealing.REPORT_FIELDS),
            *extras,
        )
        reports.append(_convert(row, report_converters))
        events.append(_convert((report.id, plan.received_at, "received", "received"), event_converters))
        if plan.acknowledged_at is not None:
            events.append(_convert((report.id, plan.acknowledged_at, "acknowledged", "acknowledged"), event_converters))
        if plan.state not in ("received", "acknowledged"):
            at = plan.finalised_at or max(
                plan.acknowledged_at or plan.received_at, plan.next_update_due_at - timedelta(days=60)
            )
            events.append(_convert((report.id, at, "state-changed", plan.state), event_converters))
    return reports, events


def workforce_chunk(task: tuple[int, list[tuple[int, str, str, str, bool, date]]]) -> list[tuple]:
    """Directory rows for a chunk of people: blind indexes of their synthetic numbers and names."""
    assert _context is not None
    _number, people = task
    converters = _converters_for("workforce", WORKFORCE_COLUMNS)
    stamp = utcnow()
    rows = []
    for person, command, rank_band, ethnicity, probationer, joined in people:
        staff_index, name_index = _indexes(person, True, True)
        rows.append(
            _convert((staff_index, name_index, command, rank_band, ethnicity, probationer, joined, stamp), converters)
        )
    return rows


# ---------------------------------------------------------------- writing (bulk, one transaction)

_PG_TYPES = ((LargeBinary, "bytea"), (Boolean, "bool"), (DateTime, "timestamp"), (Date, "date"), (Integer, "int4"))


def _pg_type(column: Any) -> str:
    if isinstance(column.type, JSON):
        return "text"  # the binary form of json is its text; psycopg's json dumper would quote a str again
    for kind, name in _PG_TYPES:
        if isinstance(column.type, kind):
            return name
    if isinstance(column.type, String):
        return "text"
    raise TypeError(f"no COPY type for {column.name}")


class _Writer:
    """Bulk rows into one table: binary COPY on PostgreSQL, executemany on SQLite; the caller's transaction."""

    def __init__(self, session: Session, model: Any, columns: Sequence[str]) -> None:
        self.connection = session.connection()
        self.dialect = self.connection.dialect.name
        self.table = model.__table__
        self.columns = list(columns)
        names = ", ".join(self.columns)
        if self.dialect == "postgresql":
            self.statement = f"COPY {self.table.name} ({names}) FROM STDIN (FORMAT BINARY)"
            self.types = [_pg_type(self.table.columns[c]) for c in self.columns]
        else:
            placeholders = ", ".join("?" for _ in self.columns)
            # Names from the model, never from input.
            self.statement = f"INSERT INTO {self.table.name} ({names}) VALUES ({placeholders})"  # noqa: S608

    def write(self, rows: Sequence[tuple]) -> None:
        if not rows:
            return
        raw = self.connection.connection.driver_connection
        if self.dialect == "postgresql":
            with raw.cursor() as cursor, cursor.copy(self.statement) as copy:  # type: ignore[union-attr]
                copy.set_types(self.types)
                for row in rows:
                    copy.write_row(row)
        elif self.dialect == "sqlite":
            raw.executemany(self.statement, rows)  # type: ignore[union-attr]
        else:  # another database: SQLAlchemy's executemany with the same values
            self.connection.execute(insert(self.table), [dict(zip(self.columns, r, strict=True)) for r in rows])


def _python_defaults(model: Any, given: Sequence[str]) -> dict[str, Any]:
    """Values for columns this module does not set but which have a Python-side default (new columns)."""
    found: dict[str, Any] = {}
    for column in model.__table__.columns:
        if column.name in given or column.default is None or column.primary_key:
            continue
        default = column.default
        if default.is_scalar:
            found[column.name] = default.arg
        elif default.is_callable:
            try:
                found[column.name] = default.arg(None)
            except TypeError:
                found[column.name] = default.arg()
    return found


def allocate_references(session: Session, per_year: dict[int, int]) -> dict[int, int]:
    """Take a block of case numbers for each year with one counter update each; returns the first of each."""
    first: dict[int, int] = {}
    for year, count in sorted(per_year.items()):
        for _ in range(3):
            last = session.execute(
                update(ReferenceCounter)
                .where(ReferenceCounter.year == year)
                .values(last=ReferenceCounter.last + count)
                .returning(ReferenceCounter.last)
            ).scalar()
            if last is not None:
                first[year] = last - count + 1
                break
            try:
                with session.begin_nested():
                    session.add(ReferenceCounter(year=year, last=count))
                first[year] = 1
                break
            except IntegrityError:
                continue
        else:
            raise RuntimeError(f"could not allocate case references for {year}")
    return first


# ---------------------------------------------------------------- the command's work


class SeedError(ValueError):
    """Seeding cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class SeedResult:
    cases: int
    workforce: int
    subjects: int
    first_reference: str
    last_reference: str
    by_queue: dict[str, int]
    open_cases: int
    seconds: float


CHUNK = 2_000  # cases per sealing task (and per insert)
WORKFORCE_CHUNK = 10_000
IN_FLIGHT = 6  # tasks handed to workers ahead of the writer: bounds memory


def default_workers(reports: int) -> int:
    """Parallel sealing pays once the cases outweigh starting the workers (about a second)."""
    return 0 if reports < 5_000 else max(1, min(2, os.cpu_count() or 1))


def seed(
    session: Session,
    secrets: ServerSecrets,
    reports: int,
    *,
    seed_value: int = 1,
    acknowledge_days: int = 7,
    update_days: int = 28,
    now: datetime | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """Create a synthetic force and `reports` sealed cases about it, and commit. Deterministic in its clear
    values for a given seed and `now`; content is sealed under fresh random keys, as in real intake.

    Refuses a database whose workforce directory already has people: the seeded force replaces nobody.
    References are taken in blocks and committed first; on any later failure everything else is rolled back
    (the numbers taken stay unused).
    """
    started = time.perf_counter()
    if reports < 1 or reports > MAX_REPORTS:
        raise SeedError(f"--reports must be from 1 to {MAX_REPORTS:,}")
    if session.scalar(select(WorkforceMember.id).limit(1)) is not None:
        raise SeedError("the workforce directory is not empty: seed a fresh database (`flask portal init`)")
    if session.scalar(select(Report.id).where(Report.source == SOURCE).limit(1)) is not None:
        raise SeedError("seeded cases are already loaded: seed a fresh database")
    if session.scalar(select(Queue.id).where(Queue.key_generation > 1).limit(1)) is not None:
        raise SeedError("a queue's key has been rotated: seed a fresh database (`flask portal init`)")
    queues = {q.code: (q.id, q.public_key) for q in session.scalars(select(Queue))}
    if routing.DPS not in queues:
        raise SeedError("no queues: run `flask portal init` first")
    now = (now or utcnow()).replace(microsecond=0)
    plan = plan_cases(
        reports,
        seed_value,
        now,
        _Router(session, list(queues)),
        _pattern_assessor(session),
        acknowledge_days=acknowledge_days,
        update_days=update_days,
    )
    per_year = Counter(case.received_at.year for case in plan.cases)
    session.rollback()  # end the read transaction: the counters are updated on their own
    first = allocate_references(session, dict(per_year))
    session.commit()
    taken = dict(first)
    for case in plan.cases:
        year = case.received_at.year
        case.reference = intake.format_reference(year, taken[year])
        taken[year] += 1

    extra_defaults = _python_defaults(Report, REPORT_COLUMNS)
    dialect = session.get_bind().dialect.name
    context = SealingContext(
        dialect=dialect,
        queues=queues,
        recovery_public_key=secrets.recovery_public_key,
        blind_index_key=secrets.blind_index_key,
        salt=plan.salt,
        seed=seed_value,
        acknowledge_days=acknowledge_days,
        extra_report_defaults=extra_defaults,
    )
    workers = default_workers(reports) if workers is None else workers
    force = plan.workforce
    people = [
        (p, force.command[p], force.rank[p], force.ethnicity[p], force.probationer[p], force.joined[p])
        for p in range(len(force))
    ]
    workforce_tasks = [
        (n, people[i : i + WORKFORCE_CHUNK]) for n, i in enumerate(range(0, len(people), WORKFORCE_CHUNK))
    ]
    global _shared_plan
    forked = workers > 0 and _start_method().get_start_method() == "fork"
    _shared_plan = plan.cases if forked else []
    case_tasks = [
        (n, i, i + CHUNK, None if forked else plan.cases[i : i + CHUNK])
        for n, i in enumerate(range(0, len(plan.cases), CHUNK))
    ]
    pool = None
    try:
        if dialect == "sqlite":
            # The whole load in cache (~3 KB a case with its events and indexes): pages that spill to the WAL
            # mid-transaction are read back for every later insert into their B-tree, doubling the cost.
            cache_kib = min(max(65_536, 4 * reports), 6_000_000)
            session.connection().exec_driver_sql(f"PRAGMA cache_size=-{cache_kib}")
        # A bulk load (portal.bulk): triggers and secondary indexes off for it, their work done once at the end.
        with bulk.bulk_load(session):
            workforce_writer = _Writer(session, WorkforceMember, WORKFORCE_COLUMNS)
            report_writer = _Writer(session, Report, REPORT_COLUMNS + tuple(extra_defaults))
            event_writer = _Writer(session, CaseEvent, EVENT_COLUMNS)
            if workers > 0:
                pool = _start_method().Pool(workers, initializer=_init_worker, initargs=(context,))
                for rows in _ordered(pool, workforce_chunk, workforce_tasks):
                    workforce_writer.write(rows)
                for report_rows, event_rows in _ordered(pool, seal_chunk, case_tasks):
                    report_writer.write(report_rows)
                    event_writer.write(event_rows)
                    if progress:
                        progress(len(report_rows))
            else:
                _init_worker(context)
                try:
                    for task in workforce_tasks:
                        workforce_writer.write(workforce_chunk(task))
                    for task in case_tasks:
                        report_rows, event_rows = seal_chunk(task)
                        report_writer.write(report_rows)
                        event_writer.write(event_rows)
                        if progress:
                            progress(len(report_rows))
                finally:
                    _init_worker(None)  # type: ignore[arg-type]
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        _shared_plan = []
        if pool is not None:
            pool.terminate()
            pool.join()
        if dialect == "sqlite":
            session.connection().exec_driver_sql("PRAGMA cache_size=-2000")
            session.commit()
    if dialect == "postgresql":
        # As after any bulk load: fresh planner statistics, and the visibility map that lets the oversight figures
        # read their covering indexes alone (index-only scans) rather than the wide rows. Until autovacuum came
        # round, every figure would read the whole table. VACUUM runs outside a transaction.
        session.commit()
        with session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in ("reports", "workforce", "case_events"):
                connection.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
    by_queue_id = Counter(case.queue for case in plan.cases)
    return SeedResult(
        cases=len(plan.cases),
        workforce=len(force),
        subjects=plan.subjects,
        first_reference=min((c.reference for c in plan.cases), key=_reference_order),
        last_reference=max((c.reference for c in plan.cases), key=_reference_order),
        by_queue=dict(by_queue_id),
        open_cases=sum(1 for c in plan.cases if c.finalised_at is None),
        seconds=time.perf_counter() - started,
    )


def _reference_order(reference: str) -> tuple[int, int]:
    _cr, year, number = reference.split("-")
    return int(year), int(number)


def _start_method() -> Any:
    """fork where there is one: the workers need nothing of this process but the plan and public keys, and
    spawn would re-run the caller's main script (a bench or a notebook) in each worker."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _ordered(pool: Any, function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
    """Results in task order, with a few tasks in flight: the workers seal while this process writes."""
    pending: deque = deque()
    upcoming = iter(tasks)
    for task in upcoming:
        pending.append(pool.apply_async(function, (task,)))
        if len(pending) >= IN_FLIGHT:
            break
    while pending:
        result = pending.popleft().get()
        next_task = next(upcoming, None)
        if next_task is not None:
            pending.append(pool.apply_async(function, (next_task,)))
        yield result
