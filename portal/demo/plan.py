"""The plan: every clear value of a synthetic force and its cases, made in one process from one seeded generator
(the same seed and `now`, the same force and cases). Nothing here is sealed; portal.demo.rows seals the content."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from portal.core import routing
from portal.demo.force import (
    ALLEGATION_RELATIVE,
    CASE_TO_ANSWER,
    CATEGORY_SHARES,
    COMMAND_SHARES,
    ETHNICITY_SHARES,
    FEAR_OF_REPRISAL,
    GM_DISMISSAL_FIRST_YEAR,
    GM_DISMISSAL_LAST_YEAR,
    HEADCOUNT_CAP,
    HEADCOUNT_MIN,
    IN_DIRECTORY_SHARE,
    LONG_CASE_SHARE,
    LONG_TAIL_MEAN_DAYS,
    MAX_BASE_ALLEGATION_RATE,
    MAX_DAYS,
    MODE_SHARES,
    NAME_ONLY_SHARE,
    NOT_INVESTIGATED,
    PROBATIONER_SHARE_OF_CONSTABLES,
    RANK_SHARES,
    REG13_CASE_TO_ANSWER,
    REG13_CATEGORIES,
    REG13_DISMISSAL_BEFORE,
    REG13_DISMISSAL_LATEST,
    REG13_FACTOR,
    REG13_MEDIAN_DAYS,
    REG13_RELATIVE,
    REPEAT_DISMISSAL_FACTOR,
    REPEAT_EXTRA_CASES_P,
    REPEAT_MAX_CASES,
    REPEAT_SHARE,
    SHORT_MEDIAN_DAYS,
    SHORT_SIGMA,
    SUBSTANTIATED_MORE,
    UNKNOWN_SUBJECT_SHARE,
    YEARS,
)
from portal.domain import intake


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


def headcount_for(reports: int) -> int:
    return min(max(HEADCOUNT_MIN, reports // 3), HEADCOUNT_CAP)


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
    """What portal.domain.patterns.assess reads of an earlier concern."""

    __slots__ = ("received_at", "category")

    def __init__(self, received_at: datetime, category: str) -> None:
        self.received_at = received_at
        self.category = category


def pattern_assessor(session: Session) -> Callable[[list[_Earlier], datetime], list[str]]:
    """portal.domain.patterns' early-intervention flags when the module is there; none otherwise."""
    try:
        from portal.domain import patterns
    except ImportError:  # pragma: no cover - patterns arrives with the early-intervention work
        return lambda earlier, now: []
    rules = patterns.load_rules(session)
    return lambda earlier, now: list(patterns.assess(earlier, now, rules))  # type: ignore[arg-type]


class Router:
    """portal.core.routing over the rules in the database, memoised: routing is a pure function of the facts."""

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
    router: Router,
    assess: Callable[[list[_Earlier], datetime], list[str]],
    *,
    update_days: int,
) -> Plan:
    """Every clear value of the force and of `reports` cases, from one generator seeded with `seed`."""
    rng = random.Random(seed)
    salt = rng.randrange(1 << 30)
    force = plan_workforce(rng, headcount_for(reports), now.date())
    subjects = _subjects(rng, reports, force)
    planner = _CasePlanner(rng, now, force, subjects, router, assess, update_days)
    cases = [case for subject in subjects for case in planner.cases_about(subject)]
    cases.sort(key=lambda case: case.received_at)
    numbered = sum(1 for s in subjects if s.person >= 0)
    return Plan(force, numbered, cases, salt)


@dataclass(frozen=True)
class _Standing:
    """What is known in clear of a subject: from the directory when they are in it."""

    command: str | None
    rank_band: str | None = None
    ethnicity: str | None = None
    probationer: bool | None = None


class _CasePlanner:
    """The cases about each subject in turn, every value drawn from the one generator in a fixed order (the same
    seed, the same cases): when each arrived, what it is about, where it went, and how it stands today."""

    def __init__(
        self,
        rng: random.Random,
        now: datetime,
        force: Workforce,
        subjects: list[Subject],
        router: Router,
        assess: Callable[[list[_Earlier], datetime], list[str]],
        update_days: int,
    ) -> None:
        self.rng, self.now, self.force, self.router, self.assess = rng, now, force, router, assess
        self.category_of = _chooser(CATEGORY_SHARES)
        self.reg13_category_of = _chooser(REG13_CATEGORIES)
        self.mode_of = _chooser(MODE_SHARES)
        self.command_of = _chooser(COMMAND_SHARES)
        self.quota = _Quota(rng)
        self.start = now - timedelta(days=YEARS * 365)
        self.first_year, self.last_year = self.start.year, now.year
        self.gm_trend = (GM_DISMISSAL_LAST_YEAR - GM_DISMISSAL_FIRST_YEAR) / max(1, self.last_year - self.first_year)
        # Dismissed people have left: only leavers (and named-only subjects) are dismissed, more often so
        # that the force-wide gross-misconduct dismissal share still follows the trend.
        eligible_cases = sum(s.cases for s in subjects if s.person >= len(force))
        self.eligible_share = max(eligible_cases / max(sum(s.cases for s in subjects), 1), 0.05)
        self.update = timedelta(days=update_days)

    def cases_about(self, subject: Subject) -> list[CasePlan]:
        standing, earliest = self._standing(subject.person)
        window = (self.now - earliest).total_seconds()
        moments = sorted(
            earliest + timedelta(seconds=int(window * (1.0 - self.rng.random() ** 1.07))) for _ in range(subject.cases)
        )
        earlier: list[_Earlier] = []
        cases: list[CasePlan] = []
        for number, received in enumerate(moments):
            case = self._case(subject, number, received, earlier, standing)
            cases.append(case)
            earlier.append(_Earlier(received, case.category))
        return cases

    def _standing(self, person: int) -> tuple[_Standing, datetime]:
        """The subject as the directory has them, and the earliest a case about them can arrive."""
        force = self.force
        if 0 <= person < len(force):
            joined = datetime.combine(force.joined[person], datetime.min.time())
            standing = _Standing(
                force.command[person], force.rank[person], force.ethnicity[person], force.probationer[person]
            )
            return standing, max(self.start, joined + timedelta(days=1))
        command = self.command_of(self.rng) if person >= 0 or self.rng.random() < 0.7 else None
        return _Standing(command), self.start

    def _case(
        self, subject: Subject, number: int, received: datetime, earlier: list[_Earlier], standing: _Standing
    ) -> CasePlan:
        rng = self.rng
        reg13 = subject.reg13 and number == 0
        category = self.reg13_category_of(rng) if reg13 else self.category_of(rng)
        mode = self.mode_of(rng)
        fear = rng.random() < FEAR_OF_REPRISAL[mode]
        flags = self.assess(earlier, received) if earlier else []
        decision = self.router.route(category, standing.command, fear, len(earlier), bool(flags))
        finalised: datetime | None = received + timedelta(days=_days_to_finalise(rng, reg13))
        acknowledged: datetime | None = received + timedelta(days=rng.uniform(0.5, 12.0))
        if finalised is not None and finalised <= self.now:
            state = "closed" if self.now - finalised > timedelta(days=60) else "resolved"
            next_due = finalised + self.update
            severity, finding, sanction = self._outcome(subject, number, category, standing.ethnicity, reg13, received)
        else:
            finalised, finding, sanction = None, None, None
            state, acknowledged, severity, next_due = self._open_stage(category, received, acknowledged)
        return CasePlan(
            received_at=received,
            category=category,
            mode=mode,
            fear_of_reprisal=fear,
            person=subject.person,
            has_number=subject.has_number,
            has_name=subject.has_name,
            command=standing.command,
            rank_band=standing.rank_band,
            ethnicity=standing.ethnicity,
            probationer=standing.probationer,
            state=state,
            acknowledged_at=acknowledged,
            finalised_at=finalised,
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

    def _outcome(
        self, subject: Subject, number: int, category: str, ethnicity: str | None, reg13: bool, received: datetime
    ) -> tuple[str, str, str]:
        """A finalised case's severity, finding and sanction (findings 2, 3, 6, 7 and 8)."""
        rng, quota = self.rng, self.quota
        if reg13:
            answer = quota.draw("reg13", REG13_CASE_TO_ANSWER)
        else:
            answer = quota.draw(category, CASE_TO_ANSWER[category] * SUBSTANTIATED_MORE.get(ethnicity or "", 1.0))
        if answer:
            roll = rng.random()
            gm_share = 0.45 if category in routing.SERIOUS_CATEGORIES else 0.25
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
                latest_year=self.last_year,
                p_gm=(GM_DISMISSAL_FIRST_YEAR + self.gm_trend * (received.year - self.first_year))
                / self.eligible_share,
                dismissable=reg13
                or (subject.person >= len(self.force) and (subject.cases == 1 or number == subject.cases - 1)),
                repeat=subject.cases > 1,
            )
            return severity, "case-to-answer", sanction
        if rng.random() < NOT_INVESTIGATED / (1 - CASE_TO_ANSWER.get(category, 0.33)):
            return "nfa", "not-investigated", "none"
        roll = rng.random()
        severity = (
            "nfa"
            if roll < 0.4
            else (
                "practice-requiring-improvement" if roll < 0.6 else ("misconduct" if roll < 0.9 else "gross-misconduct")
            )
        )
        return severity, "no-case-to-answer", "none"

    def _open_stage(
        self, category: str, received: datetime, acknowledged: datetime | None
    ) -> tuple[str, datetime | None, str | None, datetime]:
        """An open case's stage, acknowledgement, provisional severity and next update due."""
        rng, now = self.rng, self.now
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
        severity = None
        if state in ("investigation", "referred") and rng.random() < 0.6:
            severity = "gross-misconduct" if rng.random() < 0.3 else "misconduct"
        last_contact = max(received, now - timedelta(days=rng.uniform(0.0, 40.0)))
        return state, acknowledged, severity, last_contact + self.update


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
