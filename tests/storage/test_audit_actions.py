"""Every audit entry the portal writes names an action from the one list (portal.storage.audit.ACTIONS), spelled out
where it is written, and every action on the list is written somewhere: read from the source, so a new call with a
name of its own, or a name nobody writes any more, fails here before it reaches the trail."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from portal.storage import audit

PORTAL = Path(__file__).resolve().parents[2] / "portal"


@dataclass(frozen=True)
class Call:
    where: str
    callee: str
    action: ast.expr | None


def _callee(call: ast.Call) -> str | None:
    function = call.func
    if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name) and function.value.id == "audit":
        return f"audit.{function.attr}"
    if isinstance(function, ast.Attribute):
        return function.attr
    if isinstance(function, ast.Name):
        return function.id
    return None


def _action_argument(call: ast.Call, position: int) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == "action"), None)


# Where each way of writing an entry takes its action: audit.record(session, action, ...) and, for several
# entries at once (audit.record_many), audit.Pending(action, ...).
WRITERS = {"audit.record": 1, "audit.Pending": 0}


def _writer_action(call: ast.Call, callee: str) -> ast.expr | None:
    return _action_argument(call, WRITERS[callee])


def _wrappers(trees: dict[str, ast.Module]) -> dict[str, int]:
    """Functions that pass one of their parameters on as the action of an entry: name -> its position."""
    found: dict[str, int] = {}
    for tree in trees.values():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            parameters = [a.arg for a in function.args.args]
            for call in ast.walk(function):
                if isinstance(call, ast.Call) and _callee(call) in WRITERS:
                    action = _writer_action(call, _callee(call))
                    if isinstance(action, ast.Name) and action.id in parameters:
                        found[function.name] = parameters.index(action.id)
    return found


def _calls() -> tuple[list[Call], dict[str, int]]:
    trees = {str(path.relative_to(PORTAL.parent)): ast.parse(path.read_text()) for path in PORTAL.rglob("*.py")}
    wrappers = _wrappers(trees)
    calls = []
    for name, tree in trees.items():
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            callee = _callee(call)
            if name == "portal/storage/audit.py" and callee in ("record", "Pending"):
                callee = f"audit.{callee}"
            if callee in WRITERS:
                calls.append(Call(f"{name}:{call.lineno}", "audit.record", _writer_action(call, callee)))
            elif callee in wrappers:
                calls.append(Call(f"{name}:{call.lineno}", callee, _action_argument(call, wrappers[callee])))
    return calls, wrappers


def test_every_audit_entry_written_names_an_action_on_the_list():
    calls, wrappers = _calls()
    # The wrappers of today are found (so the check below sees through them), and there are many calls to check
    assert {"_audit", "audit_change", "record_opening", "record_openings"} <= set(wrappers)
    assert len(calls) > 40
    written, strangers = set(), []
    for call in calls:
        action = call.action
        if isinstance(action, ast.Constant) and isinstance(action.value, str):
            written.add(action.value)
            if action.value not in audit.ACTIONS:
                strangers.append(f"{call.where}: {action.value!r}")
        elif not (isinstance(action, ast.Name) and call.callee == "audit.record"):
            # Only a wrapper passing its own parameter on may name the action by a variable (its callers are checked)
            strangers.append(f"{call.where}: the action is not spelled out")
    assert strangers == []
    # And each name on the list is written by some part of the portal: none is left over, none means two things
    assert set(audit.ACTIONS) - written == set()


def test_record_refuses_an_action_not_on_the_list(app):
    import pytest

    from portal.storage.models import db

    with app.app_context():
        with pytest.raises(ValueError, match="action"):
            audit.record(db.session, "transition-of-assessment")
        db.session.rollback()
