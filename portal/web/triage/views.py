"""Triage views: short. Access is checked once per case by open_case(); domain work is in portal.*."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal import access, sealing
from portal.core import codes, crypto, workflow
from portal.core.routing import CATEGORIES
from portal.domain import casework, clocks, decisions, patterns, queues, reporter_access
from portal.domain.notify import queue_conflict, queue_reporter_update
from portal.domain.settings import clock_settings, clock_targets
from portal.sealing import open_report_fields, queue_keys
from portal.storage import audit
from portal.storage.models import Attachment, Officer, Queue, Report, db, utcnow
from portal.web.app import server_secrets
from portal.web.staff.auth import staff_required
from portal.web.triage import bp
from portal.web.triage.decision_page import decision_context
from portal.web.triage.forms import (
    AssignForm,
    EmptyForm,
    MessageForm,
    NoteForm,
    Reg19Form,
    RerouteForm,
    RevealForm,
    options,
)


def me() -> access.Identity:
    """The signed-in officer as the access module sees them, worked out once per request."""
    if "access_identity" not in g:
        g.access_identity = access.identity(db.session, current_user.officer, server_secrets().blind_index_key)
    return g.access_identity


def open_case(reference: str) -> tuple[Report, bytes]:
    """The case and its data key, for an officer the access module lets read it. Otherwise 404, as for a
    case that does not exist: a conflicted member learns nothing a stranger would not."""
    report = db.session.scalar(select(Report).where(Report.reference == reference))
    if report is None:
        abort(404)
    signed_in = current_user.signed_in
    try:
        return report, access.data_key(db.session, me(), signed_in.officer, signed_in.private_key, report)
    except (queue_keys.AccessDenied, crypto.DecryptionError):
        abort(404)


def member_queue(code: str) -> Queue:
    queue = db.session.scalar(select(Queue).where(Queue.code == code))
    if queue is None or queue.id not in queue_keys.member_queue_ids(db.session, current_user.officer.id):
        abort(404)
    return queue


@bp.get("/")
@staff_required()
def home() -> Any:
    summaries = queues.my_queues(db.session, current_user.officer, me())
    member_ids = queue_keys.member_queue_ids(db.session, current_user.officer.id)
    return render_template(
        "triage/home.html",
        summaries=summaries,
        awaiting=clocks.awaiting_counts(db.session, member_ids, access.not_conflicted(me())),
        states=workflow.STATES,
        waiting=decisions.waiting_for(db.session, me(), member_ids),
        categories=CATEGORIES,
        findings=codes.FINDINGS,
    )


@bp.get("/queue/<code>")
@staff_required()
def queue(code: str) -> Any:
    queue = member_queue(code)
    reference = request.args.get("reference", "").strip().upper()
    if reference:
        return redirect(url_for("triage.case", reference=reference))
    filters = queues.QueueFilters(
        state=request.args.get("state", ""),
        category=request.args.get("category", "") if request.args.get("category") in CATEGORIES else "",
        overdue=request.args.get("overdue") == "1",
        mine=request.args.get("mine") == "1",
        flagged=request.args.get("flagged") == "1",
        sort=request.args.get("sort", "oldest"),
        awaiting=request.args.get("awaiting") == "1",
        over_target=request.args.get("over_target") == "1",
    )
    targets = clock_targets(db.session, current_app.config)
    now = utcnow()
    page = request.args.get("page", "1")
    page_number = int(page) if page.isdigit() and 0 < int(page) < 100000 else 1
    rows, has_next = queues.list_queue(
        db.session, queue, me(), filters, page_number, current_app.config["QUEUE_PAGE_SIZE"], now
    )
    summaries = _summaries(queue, [row.report for row in rows])
    # Rendered before the commit that records the summaries opened: a commit expires every loaded row, and the
    # page would then read each case again, one SELECT a row. Nothing is sent unless the commit succeeds.
    page_html = render_template(
        "triage/queue.html",
        queue=queue,
        rows=rows,
        summaries=summaries,
        filters=filters,
        page=page_number,
        has_next=has_next,
        categories=CATEGORIES,
        states=workflow.STATES,
        now=now,
        stage_clocks={row.report.id: clocks.stage_view(row.report, targets, now) for row in rows},
    )
    db.session.commit()  # the record of the summaries opened
    return page_html


def _summaries(queue: Queue, reports: list[Report]) -> dict[str, str]:
    """Decrypt only what the page shows: each listed case's one-line summary, each opening on record."""
    if not reports:
        return {}
    signed_in = current_user.signed_in
    keys: dict[int, bytes] = {}
    shown = {}
    for report in reports:
        generation = report.queue_key_generation
        if generation not in keys:
            keys[generation] = queue_keys.open_queue_key(
                db.session, signed_in.officer, signed_in.private_key, queue, generation
            )
        dek = sealing.open_wrapped(keys[generation], report.dek_for_queue, report.id)
        shown[report.id] = sealing.open_text(dek, report, "summary") or ""
    access.record_openings(db.session, "view-summary", signed_in.officer.id, reports, queue.code)
    return shown


def _case_page(report: Report, dek: bytes, status: int = 200, reveal: bool = False, **forms: Any) -> Any:
    """The case page: every rendering of it (a re-shown form after an error too) is an opening on record."""
    shown_after = {"status": status} if status != 200 else {}
    access.record_opening(db.session, "view-case", current_user.officer.id, report, report.queue.code, **shown_after)
    db.session.commit()
    view = reporter_access.status_view(db.session, report, dek)
    fields = open_report_fields(report, dek)
    blind_key = server_secrets().blind_index_key
    members = [m for m in access.eligible_officers(db.session, report, blind_key) if m.id != report.assigned_officer_id]
    supervising = current_user.role in ("supervisor", "admin")
    hidden = access.hidden_from(db.session, report, blind_key) if supervising else []
    other_queues = db.session.scalars(select(Queue).where(Queue.id != report.queue_id).order_by(Queue.code)).all()
    message_form = forms.get("message_form") or MessageForm()
    message_form.new_state.choices = options(
        {s: workflow.REPORTER_WORDING[s][0] for s in decisions.message_stages(db.session, report)}, "Keep at this stage"
    )
    assign_form = forms.get("assign_form") or AssignForm()
    assign_form.officer_id.choices = options({str(m.id): m.name for m in members}, "Choose an officer")
    reroute_form = forms.get("reroute_form") or RerouteForm()
    reg19_form = forms.get("reg19_form") or Reg19Form()
    reg19_form.given_to.choices = options(clocks.REG19_GIVEN_TO, "Choose")
    reroute_form.queue.choices = options({q.code: f"{q.code}: {q.name}" for q in other_queues}, "Choose a queue")
    reroute_form.reason_code.choices = options(casework.REROUTE_REASONS, "Choose a reason")
    assigned = db.session.get(Officer, report.assigned_officer_id) if report.assigned_officer_id else None
    rationale = sealing.open_text(dek, report, "severity_rationale") or ""
    targets, now = clock_targets(db.session, current_app.config), utcnow()
    attachments = db.session.execute(
        select(
            Attachment.id, Attachment.content_type, Attachment.size, Attachment.message_id, Attachment.filename_sealed
        )
        .where(Attachment.report_id == report.id)
        .order_by(Attachment.created_at, Attachment.id)
    ).all()
    files = [(a.id, sealing.open_text(dek, a, "filename", table="attachments"), a) for a in attachments]
    return render_template(
        "triage/case.html",
        report=report,
        view=view,
        fields=fields,
        reveal=reveal,
        files=files,
        notes=casework.open_notes(db.session, report, dek),
        earlier=patterns.earlier_concerns(
            db.session, report.subject_staff_index, report.subject_name_index, exclude_id=report.id
        ),
        my_queue_ids=queue_keys.member_queue_ids(db.session, current_user.officer.id),
        hidden=hidden,
        name_reason=access.NAME,
        assigned=assigned,
        rationale=rationale,
        now=now,
        stage=clocks.stage_view(report, targets, now),
        stage_words=clocks.STAGE_TARGET_WORDS,
        case_clocks=clocks.case_clocks(db.session, report, targets, now),
        category=CATEGORIES.get(report.category, (report.category,))[0],
        wording=workflow.REPORTER_WORDING,
        message_form=message_form,
        note_form=forms.get("note_form") or NoteForm(),
        assign_form=assign_form,
        reroute_form=reroute_form,
        reveal_form=forms.get("reveal_form") or RevealForm(),
        reg19_form=reg19_form,
        reg19_notices=clocks.reg19_notices(db.session, report),
        reg19_given_to=clocks.REG19_GIVEN_TO,
        empty_form=EmptyForm(),
        severities=codes.SEVERITIES,
        findings=codes.FINDINGS,
        sanctions=codes.SANCTIONS,
        can_reassign=current_user.role in ("supervisor", "admin"),
        **decision_context(report, dek, forms, me()),
    ), status


def _audit(action: str, report: Report, **detail: Any) -> None:
    audit.record(
        db.session,
        action,
        officer_id=current_user.officer.id,
        report_id=report.id,
        queue_code=report.queue.code,
        detail=detail or None,
    )


@bp.get("/case/<reference>")
@staff_required()
def case(reference: str) -> Any:
    report, dek = open_case(reference)
    return _case_page(report, dek)


@bp.post("/case/<reference>/message")
@staff_required()
def message(reference: str) -> Any:
    report, dek = open_case(reference)
    form = MessageForm()
    if not form.validate():
        return _case_page(report, dek, 400, message_form=form)
    new_state = form.new_state.data or None
    before = report.state
    try:
        decisions.check_message_stage(db.session, report, new_state)
        casework.update_reporter(
            db.session,
            report,
            dek,
            form.message.data,
            update_every_days=clock_settings(db.session, current_app.config).update_every_days,
            new_state=new_state,
            officer_id=current_user.officer.id,
        )
    except casework.CaseworkError as exc:
        form.new_state.errors = [str(exc)]
        return _case_page(report, dek, 400, message_form=form)
    _audit("message-to-reporter", report)
    if new_state and new_state != before:
        _audit("transition", report, **{"from": before, "to": new_state})
    wants_mail = report.reporter_wants_email and report.reporter_contact_sealed is not None
    if wants_mail:  # into the outbox with the message, the address sealed until the worker sends it
        queue_reporter_update(db.session, server_secrets(), open_report_fields(report, dek)["reporter_contact"])
    db.session.commit()
    flash(
        "Your message is on the reporter's status page. The next update is due by "
        f"{report.next_update_due_at:%d %B %Y}."
    )
    return redirect(url_for("triage.case", reference=reference), code=303)


@bp.post("/case/<reference>/note")
@staff_required()
def note(reference: str) -> Any:
    report, dek = open_case(reference)
    form = NoteForm()
    if not form.validate():
        return _case_page(report, dek, 400, note_form=form)
    casework.add_note(db.session, report, dek, current_user.officer.id, form.note.data.strip())
    _audit("note", report)
    db.session.commit()
    flash("Note added. Notes are never shown to the reporter.")
    return redirect(url_for("triage.case", reference=reference) + "#notes", code=303)


@bp.post("/case/<reference>/assign")
@staff_required()
def assign(reference: str) -> Any:
    report, _dek = open_case(reference)
    wanted = request.form.get("officer_id", "")
    target_id = current_user.officer.id if wanted == "me" else (int(wanted) if wanted.isdigit() else None)
    if target_id != current_user.officer.id and current_user.role not in ("supervisor", "admin"):
        abort(403)
    officer = db.session.get(Officer, target_id) if target_id else None
    if officer is None or not access.may_be_assigned(db.session, officer, report, server_secrets().blind_index_key):
        flash("Choose an officer of this case's queue who can handle it.")
        return redirect(url_for("triage.case", reference=reference), code=303)
    report.assigned_officer_id = officer.id
    _audit("assign", report, officer_id=officer.id)
    db.session.commit()
    flash(f"Assigned to {officer.name}.")
    return redirect(url_for("triage.case", reference=reference), code=303)


@bp.post("/case/<reference>/reroute")
@staff_required()
def reroute(reference: str) -> Any:
    """Pass a case on, in two steps: the confirmation shows the target queue, how many active members it has and
    what the reporter will read; a case of a category routing keeps central leaves DPS only with a supervisor's
    approval (theirs is the confirming click); DPS keeps reading what it passes on."""
    report, dek = open_case(reference)
    form = RerouteForm()
    target = db.session.scalar(select(Queue).where(Queue.code == (form.queue.data or "")))
    valid = form.validate()
    problem = "Choose the queue to send the case to." if target is None else _reroute_problem(report, target)
    if problem:
        form.queue.errors = [problem]
    if form.reason_code.data not in casework.REROUTE_REASONS:
        form.reason_code.errors = ["Choose the reason the reporter will read."]
    if not valid or problem or form.reason_code.errors or target is None:
        return _case_page(report, dek, 400, reroute_form=form)
    source = report.queue.code
    approval = casework.needs_approval(db.session, report, target)
    if request.form.get("confirm") != "yes":
        return render_template(
            "triage/reroute_confirm.html",
            report=report,
            target=target,
            members=queue_keys.active_member_counts(db.session).get(target.id, 0),
            reporter_reads=casework.reporter_reason(target.name, form.reason_code.data),
            approval=approval,
            dps_keeps=source == casework.DPS,
            form=form,
        )
    kept = casework.reroute(
        db.session,
        report,
        dek,
        target,
        reason_code=form.reason_code.data,
        officer_id=current_user.officer.id,
        update_every_days=clock_settings(db.session, current_app.config).update_every_days,
    )
    detail = {"from": source, "to": target.code, "reason": form.reason_code.data, "supervisor_approved": approval}
    audit.record(
        db.session,
        "reroute",
        officer_id=current_user.officer.id,
        report_id=report.id,
        queue_code=target.code,
        detail={**detail, "dps_keeps_key": kept},
    )
    casework.add_note(
        db.session, report, dek, current_user.officer.id, f"Sent from {source} to {target.code}: {form.reason.data}"
    )
    db.session.commit()  # the new queue's mail is in the outbox with the move (casework.reroute)
    flash(f"{report.reference} is now with {target.code}.")
    if report.queue_id in queue_keys.member_queue_ids(db.session, current_user.officer.id) or kept:
        return redirect(url_for("triage.case", reference=reference), code=303)
    return redirect(url_for("triage.queue", code=source), code=303)


def _reroute_problem(report: Report, target: Queue) -> str | None:
    """Why the case cannot go to `target` (None: it can)."""
    if target.id != report.queue_id and not access.eligible_officers(
        db.session, report, server_secrets().blind_index_key, queue_id=target.id
    ):
        # Never to a queue nobody can read: the case would wait there unseen.
        return (
            f"Nobody in {target.code} can read this case: it has no member without a conflict of interest. "
            "Choose another queue."
        )
    if target.id == report.queue_id:
        return "The case is already in that queue."
    if casework.needs_approval(db.session, report, target) and current_user.role not in ("supervisor", "admin"):
        return (
            "Cases in this category are kept central: this one leaves DPS only with a supervisor's approval. "
            "Ask a supervisor of DPS to pass it on."
        )
    return None


@bp.post("/case/<reference>/conflict")
@staff_required()
def declare_conflict(reference: str) -> Any:
    """'I know this person or I am involved': the case disappears for this officer; a supervisor is told."""
    report, _dek = open_case(reference)
    if request.form.get("confirm") != "yes":
        flash("Nothing was changed: use the button under 'Conflict of interest' to declare one.")
        return redirect(url_for("triage.case", reference=reference) + "#conflict", code=303)
    access.declare(db.session, me(), report)
    _audit("conflict-declared", report)
    supervisors = access.supervisors_to_tell(db.session, report, server_secrets().blind_index_key)
    queue_conflict(db.session, report.reference, supervisors, declared=True)
    db.session.commit()
    flash(f"{report.reference} is hidden from you now, and a supervisor has been told. Thank you for saying.")
    return redirect(url_for("triage.home"), code=303)


@bp.post("/case/<reference>/conflict/clear")
@staff_required("supervisor", "admin")
def clear_conflict(reference: str) -> Any:
    """A supervisor's word that a member whose name matched the subject's is a different person."""
    report, _dek = open_case(reference)
    wanted = request.form.get("officer_id", "")
    officer = db.session.get(Officer, int(wanted)) if wanted.isdigit() else None
    if officer is None:
        flash("Choose the officer to show the case to.")
        return redirect(url_for("triage.case", reference=reference) + "#conflict", code=303)
    blind_key = server_secrets().blind_index_key
    reason = access.conflict_of(db.session, access.identity(db.session, officer, blind_key), report)
    if reason != access.NAME or officer.id == current_user.officer.id:
        flash("Only a match by name alone can be cleared, and not for yourself.")
        return redirect(url_for("triage.case", reference=reference) + "#conflict", code=303)
    access.clear_name_match(db.session, report, access.identity(db.session, officer, blind_key), me())
    _audit("conflict-cleared", report)  # the supervisor, on record; whom they cleared only in the tagged row
    db.session.commit()
    flash(f"{officer.name} can see {report.reference} again.")
    return redirect(url_for("triage.case", reference=reference) + "#conflict", code=303)


@bp.post("/case/<reference>/reveal")
@staff_required()
def reveal(reference: str) -> Any:
    report, dek = open_case(reference)
    form = RevealForm()
    if not form.validate():
        return _case_page(report, dek, 400, reveal_form=form)
    _audit("reveal-identity", report, reason_given=True)
    casework.add_note(
        db.session, report, dek, current_user.officer.id, f"Reporter's identity seen. Reason: {form.reason.data}"
    )
    db.session.commit()
    return _case_page(report, dek, reveal=True)


@bp.get("/case/<reference>/attachment/<attachment_id>")
@staff_required()
def attachment(reference: str, attachment_id: str) -> Any:
    from portal.core.attachments import neutral_name

    report, dek = open_case(reference)
    file = db.session.get(Attachment, attachment_id)
    if file is None or file.report_id != report.id:
        abort(404)
    data = sealing.open_bytes(dek, file, "content")
    access.record_opening(
        db.session, "download-attachment", current_user.officer.id, report, report.queue.code, attachment=file.id
    )
    db.session.commit()
    # Offered as attachment-N.ext (N: its place among the case's files, oldest first): the reporter's own
    # name for the file stays sealed. Sandboxed and never sniffed, so a file cannot act in the browser.
    order = db.session.scalars(
        select(Attachment.id).where(Attachment.report_id == report.id).order_by(Attachment.created_at, Attachment.id)
    ).all()
    name = neutral_name(order.index(file.id) + 1, file.content_type)
    response = Response(data)
    is_text = file.content_type == "text/plain"
    response.headers["Content-Type"] = "text/plain; charset=utf-8" if is_text else file.content_type
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/audit")
@staff_required("supervisor", "admin")
def audit_trail() -> Any:
    reference = request.args.get("reference", "").strip().upper()
    report_id = None
    if reference:
        report_id = db.session.scalar(select(Report.id).where(Report.reference == reference)) or "-"
    before = request.args.get("before", "")
    entries = audit.entries(
        db.session,
        report_id=report_id,
        action=request.args.get("action") or None,
        before_id=int(before) if before.isdigit() else None,
        limit=100,
    )
    names = dict(db.session.execute(select(Officer.id, Officer.name)).all())
    references = dict(
        db.session.execute(
            select(Report.id, Report.reference).where(Report.id.in_({e.report_id for e in entries if e.report_id}))
        ).all()
    )
    return render_template(
        "triage/audit.html",
        entries=entries,
        names=names,
        references=references,
        reference=reference,
        actions=audit.ACTIONS,
        action=request.args.get("action", ""),
    )
