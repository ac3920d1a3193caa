"""The operator's configuration an intake reads (commands, queues and their keys, routing rules, pattern rules,
clock settings), kept per process while its version is current (issue 15 step 7).

One statement reads it all (CONFIG_STATEMENT); a settings row (CONFIG_VERSION) names its version. Every write to the
configuration through the application, in any process and through any session, gives it a new version in the same
transaction: the session hooks at the end of the version section notice a command, queue (its key rotated
included), routing rule or intake setting added, changed or deleted, by the unit of work or by a statement. So each
request reads the version only, with a statement it makes anyway where it can (load_config_and_sent), and the
configuration again only when the version has changed, or CONFIG_MAX_AGE after it last read it (a change made by
SQL written by hand, which no hook sees).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from secrets import token_hex
from types import MappingProxyType
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Boolean,
    Integer,
    LargeBinary,
    String,
    bindparam,
    cast,
    event,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from portal.core import routing
from portal.domain import patterns
from portal.storage.models import Command, Queue, Report, RoutingRule, Setting

# The clocks an operator sets (portal.domain.settings edits them). Named here so that one read serves an intake.
ACKNOWLEDGE_SETTING = "clock.acknowledge_within_days"
UPDATE_SETTING = "clock.update_every_days"
# How many other reports about the same person release a report held until corroborated (default one).
CORROBORATE_SETTING = "held.corroborate_after"


@dataclass(frozen=True)
class QueueKey:
    """What an intake needs of a queue: its id, and the public key a new report's data key is sealed to."""

    id: int
    code: str
    public_key: bytes
    generation: int = 1  # of the queue's key pair (portal.sealing.queue_keys)


@dataclass(frozen=True)
class IntakeConfig:
    """The operator's configuration an intake reads: see load_config. Shared, so never changed in place."""

    commands: tuple[tuple[str, str], ...]  # active commands as (code, name), by name: the report form's list
    queues: Mapping[str, QueueKey]  # by code
    rules: tuple[routing.Rule, ...]  # the routing rules, in order
    pattern_rules: patterns.InterventionRules
    settings: Mapping[str, str]  # the stored clock settings, by name (portal.domain.settings.clocks_from reads them)


def _config_statement() -> Any:
    """Active commands, queues, routing rules and the intake's settings rows, as one UNION ALL.

    Every branch has the same ten columns; a branch fills those it has and leaves the rest NULL:
    command (code, name); queue (code, number=id, blob=public key, position=key generation); rule (code=kind,
    target, reason, params as JSON text, position, number=id, flag=enabled); setting (code=name, target=value).
    """
    text, number = String(), Integer()
    columns = {
        "kind": text,
        "code": text,
        "name": text,
        "target": text,
        "reason": text,
        "params": text,
        "position": number,
        "number": number,
        "flag": Boolean(),
        "blob": LargeBinary(),
    }

    def branch(kind: str, **values: Any) -> Any:
        unknown = set(values) - set(columns)
        assert not unknown, unknown
        given = {"kind": literal_column(f"'{kind}'", String), **values}
        # A typed NULL: PostgreSQL settles a UNION's column types pairwise, and NULL with NULL is text.
        return select(*(given.get(name, cast(null(), kind_)).label(name) for name, kind_ in columns.items()))

    commands = branch("c", code=Command.code, name=Command.name, flag=Command.active).where(Command.active)
    queues = branch("q", code=Queue.code, number=Queue.id, blob=Queue.public_key, position=Queue.key_generation)
    rules = branch(
        "r",
        code=RoutingRule.kind,
        target=RoutingRule.target,
        reason=RoutingRule.reason,
        params=cast(RoutingRule.params, String),
        position=RoutingRule.position,
        number=RoutingRule.id,
        flag=RoutingRule.enabled,
    )
    settings = branch("s", code=Setting.name, target=Setting.value).where(Setting.name.in_(CONFIG_SETTINGS))
    # By kind; commands by name (in the database's collation, as the form always listed them), rules in order.
    return union_all(commands, queues, rules, settings).order_by(
        literal_column("kind"), literal_column("name"), literal_column("position"), literal_column("number")
    )


CONFIG_SETTINGS = (ACKNOWLEDGE_SETTING, UPDATE_SETTING, CORROBORATE_SETTING, patterns.SETTING)
CONFIG_STATEMENT = _config_statement()


def load_config(session: Session) -> IntakeConfig:
    """The commands, queues, routing rules, pattern rules and clocks an intake uses.

    Kept per process and per engine (database), and read again whenever the configuration's version (a settings row,
    CONFIG_VERSION) is not the one it was read at: every write to the configuration through the application, in
    any process, gives it a new version in the same transaction (the hooks at the end of this section), so the
    next request of every worker sees the change. The version is read on every request (one small statement);
    the configuration itself only after a change, or CONFIG_MAX_AGE after it was read (a change made outside the
    application, by SQL written by hand, is seen then).
    """
    return _config(session, None)[0]


def load_config_and_sent(session: Session, index: bytes | None) -> tuple[IntakeConfig, str | None]:
    """load_config, and the reference of the report whose submission index is `index` (intake.submission_index),
    if any: one statement for both while the configuration has not changed (portal.domain.intake wraps it)."""
    return _config(session, index)


# The configuration's version: any value it has not had before, written with every change (bump_config_version).
CONFIG_VERSION = "intake.config_version"
# A configuration older than this is read again whatever its version says (changes made outside the application).
CONFIG_MAX_AGE = 60.0
_SETTINGS_TABLE = Setting.__table__
_VERSION = select(_SETTINGS_TABLE.c.value).where(_SETTINGS_TABLE.c.name == CONFIG_VERSION).scalar_subquery()
VERSION_STATEMENT = select(_VERSION.label("version"))
VERSION_AND_SENT_STATEMENT = select(
    _VERSION.label("version"),
    select(Report.__table__.c.reference)
    .where(Report.__table__.c.submission_index == bindparam("submission_index"))
    .scalar_subquery()
    .label("reference"),
)


@dataclass(frozen=True)
class _Kept:
    version: str
    read_at: float  # time.monotonic()
    config: IntakeConfig


# By engine (each worker has one for its life; each test app its own): entries go with their engine.
_KEPT: WeakKeyDictionary[Any, _Kept] = WeakKeyDictionary()


def _config(session: Session, index: bytes | None) -> tuple[IntakeConfig, str | None]:
    # Built statements, run on the session's connection (its transaction): no ORM machinery on the hot path.
    connection = session.connection()
    if index is None:
        version, sent = connection.execute(VERSION_STATEMENT).scalar(), None
    else:
        version, sent = connection.execute(VERSION_AND_SENT_STATEMENT, {"submission_index": index}).one()
    where = connection.engine
    kept = _KEPT.get(where)
    if version is not None and kept is not None and kept.version == version:
        if time.monotonic() - kept.read_at < CONFIG_MAX_AGE:
            _LAST["config"] = kept.config
            return kept.config, sent
    # Read after the version: a change committed in between is read now and read again at the next request.
    config = _parse_config(tuple(map(tuple, connection.execute(CONFIG_STATEMENT))))
    if version is None:  # no version row (a database set up by other means): nothing is kept
        _KEPT.pop(where, None)
    else:
        _KEPT[where] = _Kept(version, time.monotonic(), config)
    _LAST["config"] = config
    return config, sent


def forget_config() -> None:
    """Forget the configuration kept by this process (the next request reads it afresh)."""
    _KEPT.clear()


def bump_config_version(session: Session) -> None:
    """Give the configuration a new version, in the caller's transaction: once it commits, every process reads the
    configuration afresh at its next request. The hooks below call it for every write through the application."""
    values = {"name": CONFIG_VERSION, "value": token_hex(12)}
    connection = session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(_SETTINGS_TABLE).values(**values)
    connection.execute(upsert.on_conflict_do_update(index_elements=["name"], set_={"value": upsert.excluded.value}))


CONFIG_TABLES = frozenset({"commands", "queues", "routing_rules"})


def _config_object(item: Any) -> bool:
    if isinstance(item, Command | Queue | RoutingRule):
        return True
    return isinstance(item, Setting) and item.name in CONFIG_SETTINGS


def _on_flush(session: Session, _context: Any, _instances: Any) -> None:
    """Before any flush: a command, queue, routing rule or intake setting added, changed or deleted (administration
    pages, reference data, init, key rotation, importers) gives the configuration a new version."""
    if any(_config_object(item) for item in chain(session.new, session.dirty, session.deleted)):
        bump_config_version(session)


def _on_statement(state: ORMExecuteState) -> None:
    """An INSERT, UPDATE or DELETE run through a session on those tables does too (a settings row only if it may be
    one of CONFIG_SETTINGS: the audit trail's head, written with every audited action, is not)."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if name in CONFIG_TABLES or (name == "settings" and _may_write_config_setting(state)):
        bump_config_version(state.session)


def _may_write_config_setting(state: ORMExecuteState) -> bool:
    """False only when the statement names the settings it writes, and none is an intake setting."""
    names = _names_written(state)
    return names is None or bool(names & set(CONFIG_SETTINGS))


def _names_written(state: ORMExecuteState) -> set[str] | None:
    statement = state.statement
    if state.is_insert:
        rows = state.parameters if isinstance(state.parameters, list) else [state.parameters or {}]
        compiled = statement.compile(dialect=state.session.get_bind().dialect).params
        names = {row.get("name", compiled.get("name")) for row in rows}
        return None if None in names else {str(n) for n in names}
    where = getattr(statement, "whereclause", None)
    if where is None:
        return None
    for element in visitors.iterate(where):
        if (
            isinstance(element, BinaryExpression)
            and getattr(element.left, "table", None) is _SETTINGS_TABLE
            and getattr(element.left, "name", None) == "name"
            and isinstance(element.right, BindParameter)
        ):
            value = element.right.effective_value
            if element.operator is operators.eq:
                return {str(value)}
            if element.operator is operators.in_op and isinstance(value, list | tuple):
                return {str(v) for v in value}
    return None


event.listen(Session, "before_flush", _on_flush)
event.listen(Session, "do_orm_execute", _on_statement)


_LAST: dict[str, IntakeConfig] = {}


def last_config() -> IntakeConfig | None:
    """The configuration this process read last, if any: the report form's commands while the database is away."""
    return _LAST.get("config")


@lru_cache(maxsize=8)
def _parse_config(rows: tuple[tuple[Any, ...], ...]) -> IntakeConfig:
    commands: list[tuple[str, str]] = []
    queues: dict[str, QueueKey] = {}
    rules: list[routing.Rule] = []
    stored: dict[str, str] = {}
    for kind, code, name, target, reason, params, position, number, flag, blob in rows:
        if kind == "c":
            commands.append((code, name))
        elif kind == "q":
            queues[code] = QueueKey(number, code, bytes(blob), position or 1)
        elif kind == "r":
            values = json.loads(params) if params is not None else None
            rules.append(routing.Rule(code, target, reason, dict(values or {}), bool(flag)))
        elif kind == "s":
            stored[code] = target
    return IntakeConfig(
        commands=tuple(commands),
        queues=MappingProxyType(queues),
        rules=tuple(rules),
        pattern_rules=patterns.parse_rules(stored.pop(patterns.SETTING, None)),
        settings=MappingProxyType(stored),
    )
