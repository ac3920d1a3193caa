"""Triage forms. CSRF is checked globally for staff forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ..casework import FINDINGS, SANCTIONS, SEVERITIES


def options(labels: dict[str, str], blank: str | None = None) -> list[SelectChoice]:
    """Choices for a select, optionally led by a blank 'Choose' option."""
    leading = [SelectChoice("", blank)] if blank else []
    return leading + [SelectChoice(value, label) for value, label in labels.items()]


class MessageForm(FlaskForm):
    message = TextAreaField(
        "Message to the reporter",
        validators=[DataRequired("Write the message to the reporter."), Length(max=20000)],
    )
    new_state = SelectField("Move the case to", choices=[], validate_choice=False, validators=[Optional()])


class NoteForm(FlaskForm):
    note = TextAreaField("Internal note", validators=[DataRequired("Write the note."), Length(max=20000)])


class AssignForm(FlaskForm):
    officer_id = SelectField("Assign to", choices=[], validate_choice=False)


class RerouteForm(FlaskForm):
    queue = SelectField("Send to queue", choices=[], validate_choice=False)
    reason = StringField("Why", validators=[DataRequired("Say why the case is moving."), Length(max=300)])


class AssessmentForm(FlaskForm):
    severity = SelectField("Severity", choices=options(SEVERITIES, "Choose"), validate_choice=False)
    rationale = TextAreaField(
        "Rationale", validators=[DataRequired("Give the reasons for the assessment."), Length(max=5000)]
    )
    reg13 = BooleanField("This is a Regulation 13 case (probationer)")


class OutcomeForm(FlaskForm):
    finding = SelectField("Finding", choices=options(FINDINGS, "Choose"), validate_choice=False)
    sanction = SelectField("Sanction", choices=options(SANCTIONS), validate_choice=False)


class RevealForm(FlaskForm):
    reason = StringField(
        "Reason for seeing the reporter's identity",
        validators=[DataRequired("Give the reason: it is recorded in the audit trail."), Length(max=300)],
    )


class EmptyForm(FlaskForm):
    pass
