"""One question (or one small group) per page, GOV.UK style: /report/start, the question pages, "Check your
answers" with a "Change" link to each, then Send, which goes through the same intake path as the one-page form
(views.send_report). Everything works with JavaScript off.

Between pages the answers and chosen files live only in the draft (portal.domain.drafts), sealed under a key kept in
this browser's session cookie. A page's answers are kept even when they have a mistake, so nothing typed is lost.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, redirect, render_template, request, session, url_for
from werkzeug.datastructures import MultiDict

from portal.core import crypto
from portal.core.codes import MODES
from portal.core.routing import CATEGORIES
from portal.domain import drafts, intake
from portal.storage.models import db
from portal.web.app import server_secrets
from portal.web.report import bp, limits, views
from portal.web.report.forms import ReportForm

DRAFT = "report_draft"

# (slug, title, the fields it asks). The order is the journey's.
PAGES = [
    (
        "how",
        "About you",
        ["mode", "reporter_name", "reporter_contact", "email_updates", "reporter_email"],
    ),
    ("about", "Your concern", ["category"]),
    ("what", "What happened?", ["summary", "details"]),
    ("when", "When did it happen? (optional)", ["occurred_day", "occurred_month", "occurred_year", "date_unsure"]),
    ("where", "Where it happened", ["location", "witnesses"]),
    ("who", "Who it is about", ["subject_name", "subject_staff_number", "subject_command"]),
    ("safety", "Your safety", ["fear_of_reprisal", "hold_until_corroborated"]),
    ("files", "Photos and documents (optional)", []),
]
SLUGS = [slug for slug, _title, _fields in PAGES]
CHECKBOXES = {"email_updates", "date_unsure", "fear_of_reprisal", "hold_until_corroborated"}
# An error on occurred_on (from the date boxes) belongs to the "when" page.
ERROR_PAGE = {"occurred_on": "when", "attachments": "files"}


def draft_token() -> drafts.DraftToken | None:
    stored = session.get(DRAFT)
    if not isinstance(stored, dict):
        return None
    try:
        return drafts.DraftToken(str(stored["id"]), crypto.unb64(stored["key"]))
    except (KeyError, TypeError, ValueError):
        return None


def delete_draft() -> None:
    """This browser's draft, gone (on exit; sending deletes it in its own transaction)."""
    token = draft_token()
    if token is not None:
        drafts.delete_draft(db.session, token.draft_id)
    session.pop(DRAFT, None)


def _answers() -> tuple[drafts.DraftToken, dict[str, str]] | None:
    token = draft_token()
    found = drafts.answers(db.session, token) if token else None
    if token is None or found is None:
        session.pop(DRAFT, None)
        db.session.commit()  # an expired draft found on the way is deleted now
        return None
    return token, found


def _form(answers: dict[str, str]) -> ReportForm:
    form = ReportForm(formdata=MultiDict({k: v for k, v in answers.items() if v}), meta={"csrf": False})
    form.set_commands(intake.load_config(db.session).commands)
    return form


def _page_errors(form: ReportForm, slug: str) -> dict[str, list[str]]:
    fields = dict((s, f) for s, _t, f in PAGES)[slug]
    return {
        name: list(errors) for name, errors in form.errors.items() if name in fields or ERROR_PAGE.get(name) == slug
    }


def _render(slug: str, form: ReportForm, token: drafts.DraftToken, errors: dict[str, list[str]], **extra: Any) -> Any:
    for field in form:
        field.errors = errors.get(field.name, [])
    index = SLUGS.index(slug)
    return render_template(
        "report/question.html",
        slug=slug,
        title=PAGES[index][1],
        step=index + 1,
        steps=len(PAGES),
        form=form,
        modes=MODES,
        categories=CATEGORIES,
        files=drafts.chosen_files(db.session, token),
        back=url_for("report.journey_page", slug=SLUGS[index - 1]) if index else url_for("report.journey_start"),
        change=request.args.get("change") == "1",
        max_files=current_app.config["MAX_ATTACHMENTS"],
        **extra,
    )


@bp.get("/report/start")
def journey_start() -> Any:
    if _answers() is None:
        token = drafts.start(db.session)
        db.session.commit()
        session[DRAFT] = {"id": token.draft_id, "key": crypto.b64(token.key)}
    return render_template("report/start.html", first=url_for("report.journey_page", slug=SLUGS[0]))


@bp.route("/report/q/<slug>", methods=["GET", "POST"])
def journey_page(slug: str) -> Any:
    if slug not in SLUGS:
        abort(404)
    found = _answers()
    if found is None:
        return redirect(url_for("report.journey_start", expired=1), code=303)
    token, answers = found
    if request.method == "GET":
        return _render(slug, _form(answers), token, {})
    fields = dict((s, f) for s, _t, f in PAGES)[slug]
    typed = {
        name: ("y" if request.form.get(name) else "") if name in CHECKBOXES else request.form.get(name, "")
        for name in fields
    }
    drafts.save(db.session, token, typed)  # kept even with a mistake in it
    problems = _take_files(token) if slug == "files" else []
    db.session.commit()
    form = _form({**answers, **typed})
    form.validate()
    errors = _page_errors(form, slug)
    if problems:
        errors["attachments"] = problems
    if errors or request.form.get("remove") or (slug == "files" and request.form.get("add")):
        return _render(slug, form, token, errors), 400 if errors else 200
    if request.args.get("change") == "1" or slug == SLUGS[-1]:
        return redirect(url_for("report.journey_check"), code=303)
    return redirect(url_for("report.journey_page", slug=SLUGS[SLUGS.index(slug) + 1]), code=303)


def _take_files(token: drafts.DraftToken) -> list[str]:
    """Files chosen on the files page join the draft, sealed; a file asked to be removed leaves it."""
    removed = request.form.get("remove")
    if removed:
        drafts.remove_file(db.session, token, removed)
    chosen = [s for s in request.files.getlist("attachments") if s and s.filename]
    room = current_app.config["MAX_ATTACHMENTS"] - drafts.file_count(db.session, token)
    if len(chosen) > room:
        return [f"You can add up to {current_app.config['MAX_ATTACHMENTS']} files in all. Remove one to add another."]
    clean, problems = views._read_files(chosen)
    for file in clean:
        drafts.add_file(db.session, token, file)
    return problems


def check_page(**extra: Any) -> Any:
    found = _answers()
    if found is None:
        return redirect(url_for("report.journey_start", expired=1), code=303)
    token, answers = found
    form = _form(answers)
    form.validate()
    return render_template(
        "report/check.html",
        form=form,
        pages=PAGES,
        modes=MODES,
        categories=CATEGORIES,
        files=drafts.chosen_files(db.session, token),
        problems=[
            (url_for("report.journey_page", slug=ERROR_PAGE.get(name) or _page_of(name), change=1), message)
            for name, messages in form.errors.items()
            for message in messages
        ],
        **extra,
    )


def _page_of(name: str) -> str:
    return next((slug for slug, _t, fields in PAGES if name in fields), SLUGS[0])


@bp.get("/report/check")
def journey_check() -> Any:
    return check_page()


@bp.post("/report/check")
@limits.report_limits  # the same allowance as the one-page form; only a report that was made counts
def journey_send() -> Any:
    found = _answers()
    if found is None:
        return redirect(url_for("report.journey_start", expired=1), code=303)
    token, answers = found
    form = _form(answers)
    if not form.validate():
        return check_page(), 400
    form.submission.data = session.get(views.SUBMISSION) or views._new_submission()
    # The configuration (kept by the process while current) and whether this token already made a case: one statement.
    config, sent = intake.load_config_and_sent(db.session, server_secrets(), form.submission.data)
    if sent is not None:
        return views._already_sent(form, sent)
    files = drafts.clean_files(db.session, token)

    def forget_draft() -> None:  # in the report's own transaction
        drafts.delete_draft(db.session, token.draft_id)

    response = views.send_report(form, files, config, before_commit=forget_draft)
    session.pop(DRAFT, None)
    return response
