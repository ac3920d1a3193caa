"""The same-stack baseline for intake (issue 15 step 7): what a plain Flask application on the portal's stack does
for one report, and nothing more. bench/bench_same_stack.py serves it under gunicorn with the portal's settings,
beside the portal, and compares the two.

- GET /report renders a Flask-WTF form with CSRF and the same fields (and validators) as the portal's report form.
- POST /report validates it (CSRF included), makes one SQLAlchemy ORM row of the same size as a portal report row
  (the clear fields, plus random bytes up to BASELINE_ROW_BYTES, as the portal's row is mostly ciphertext), adds
  it, commits once, and renders a receipt template.
- Flask-Limiter counts POST /report as the portal's limiter does (per-process memory, a generous limit).

Environment: BASELINE_DATABASE_URL, BASELINE_SECRET_KEY (the same in every worker, so a CSRF token made by one
opens in another), BASELINE_ROW_BYTES, BASELINE_RATE_LIMIT. `gunicorn -c gunicorn.conf.py bench.same_stack_app:app`
"""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from flask_limiter import Limiter
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from sqlalchemy import DateTime, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    MultipleFileField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Optional, Regexp, ValidationError

MODES = {"anonymous": "Anonymously", "confidential": "Confidentially", "named": "Openly, with my name"}
CATEGORIES = {
    "sexual-misconduct": "Sexual misconduct",
    "discrimination": "Discrimination",
    "bullying": "Bullying or harassment",
    "corruption": "Corruption or abuse of position",
    "dishonesty": "Dishonesty",
    "excessive-force": "Excessive force",
    "data-misuse": "Misuse of data or systems",
    "other": "Something else",
}
COMMANDS = [("CE", "Central"), ("NO", "North"), ("SO", "South"), ("EA", "East"), ("WE", "West"), ("HQ", "HQ")]


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class BaselineReport(db.Model):  # type: ignore[name-defined]
    __tablename__ = "baseline_reports"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    mode: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    subject_command: Mapped[str | None] = mapped_column(String(8))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)
    subject_name: Mapped[str | None] = mapped_column(Text)
    subject_staff_number: Mapped[str | None] = mapped_column(Text)
    occurred_on: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    witnesses: Mapped[str | None] = mapped_column(Text)
    reporter_name: Mapped[str | None] = mapped_column(Text)
    reporter_contact: Mapped[str | None] = mapped_column(Text)
    padding: Mapped[bytes] = mapped_column(LargeBinary)


class ReportForm(FlaskForm):
    mode = RadioField(
        "How do you want to report?",
        choices=list(MODES.items()),
        validators=[InputRequired("Choose how."), AnyOf(list(MODES), message="Choose how.")],
        validate_choice=False,
    )
    category = RadioField(
        "What is your concern about?",
        choices=list(CATEGORIES.items()),
        validators=[InputRequired("Choose what."), AnyOf(list(CATEGORIES), message="Choose what.")],
        validate_choice=False,
    )
    summary = StringField("In one line", validators=[DataRequired("Write a summary."), Length(max=200)])
    details = TextAreaField("What happened", validators=[DataRequired("Tell us."), Length(max=20000)])
    subject_name = StringField("Their name", validators=[Optional(), Length(max=200)])
    subject_staff_number = StringField(
        "Their number", validators=[Optional(), Length(max=20), Regexp(r"^[A-Za-z0-9 \-./]*$")]
    )
    subject_command = SelectField(
        "Their command", choices=[("", "I don't know")] + [(c, f"{n} ({c})") for c, n in COMMANDS]
    )
    occurred_on = DateField("When", validators=[Optional()], format=["%Y-%m-%d", "%d/%m/%Y"])
    location = StringField("Where", validators=[Optional(), Length(max=300)])
    witnesses = TextAreaField("Who else", validators=[Optional(), Length(max=2000)])
    fear_of_reprisal = BooleanField("Worried")
    hold_until_corroborated = BooleanField("Hold")
    reporter_name = StringField("Your name", validators=[Optional(), Length(max=200)])
    reporter_contact = StringField("Contact", validators=[Optional(), Length(max=300)])
    email_updates = BooleanField("Email me")
    attachments = MultipleFileField("Evidence")
    submission = HiddenField()

    def validate_occurred_on(self, field: DateField) -> None:
        if field.data and field.data > date.today():
            raise ValidationError("The date cannot be in the future.")

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if self.mode.data in ("confidential", "named") and not (self.reporter_name.data or "").strip():
            self.reporter_name.errors = [*self.reporter_name.errors, "Give your name."]
            valid = False
        return valid


def create_app() -> Flask:
    app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
    app.config.update(
        SECRET_KEY=os.environ.get("BASELINE_SECRET_KEY", secrets.token_hex(32)),
        SQLALCHEMY_DATABASE_URI=os.environ.get("BASELINE_DATABASE_URL", "sqlite:////tmp/baseline.db"),
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=52 * 1024 * 1024,
        RATELIMIT_STORAGE_URI="memory://",
    )
    db.init_app(app)
    limiter = Limiter(key_func=lambda: "one-key", default_limits=[], headers_enabled=False)
    limiter.init_app(app)
    row_bytes = int(os.environ.get("BASELINE_ROW_BYTES", "1500"))
    rate = os.environ.get("BASELINE_RATE_LIMIT", "1000000 per minute")

    @app.route("/report", methods=["GET", "POST"])
    @limiter.limit(rate, methods=["POST"])
    def report() -> Any:
        form = ReportForm()
        if not form.validate_on_submit():
            if not form.submission.data:
                form.submission.data = secrets.token_urlsafe(24)
            return render_template("form.html", form=form), 400 if form.is_submitted() else 200
        values = {
            name: (getattr(form, name).data or None)
            for name in ("summary", "details", "subject_name", "subject_staff_number", "location", "witnesses")
        }
        values["occurred_on"] = form.occurred_on.data.isoformat() if form.occurred_on.data else None
        for name in ("reporter_name", "reporter_contact"):
            values[name] = (getattr(form, name).data or None) if form.mode.data != "anonymous" else None
        clear = sum(len(v.encode()) for v in values.values() if v) + 120
        row = BaselineReport(
            id=uuid.uuid4().hex,
            reference="B-" + secrets.token_hex(6).upper(),
            received_at=datetime.now(UTC).replace(tzinfo=None),
            mode=form.mode.data,
            category=form.category.data,
            subject_command=form.subject_command.data or None,
            padding=os.urandom(max(0, row_bytes - clear)),
            **values,
        )
        db.session.add(row)
        # Read before the commit expires them, as the portal does, so the receipt page costs no query.
        shown = {"reference": row.reference, "mode": row.mode, "acknowledge_due": row.received_at + timedelta(days=7)}
        db.session.commit()
        receipt = "-".join(secrets.token_hex(2).upper() for _ in range(5))
        return render_template("receipt.html", receipt=receipt, **shown)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


app = create_app()
