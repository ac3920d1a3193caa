"""Triage forms. CSRF is checked globally for staff forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from portal.core.codes import FINDINGS, SANCTIONS, SEVERITIES
from portal.core.workflow import AGGRAVATING, CULPABILITY, HARM, MITIGATING


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
    reason_code = SelectField("Reason the reporter reads", choices=[], validate_choice=False)
    reason = StringField(
        "Why (an internal note)", validators=[DataRequired("Say why the case is moving."), Length(max=300)]
    )


class AssessmentForm(FlaskForm):
    severity = SelectField("Severity", choices=options(SEVERITIES, "Choose"), validate_choice=False)
    rationale = TextAreaField(
        "Rationale", validators=[DataRequired("Give the reasons for the assessment."), Length(max=5000)]
    )
    reg13 = BooleanField("This is a Regulation 13 case (probationer)")
    culpability = SelectField("Culpability", choices=options(CULPABILITY, "Choose"), validate_choice=False)
    harm = SelectField("Harm", choices=options(HARM, "Choose"), validate_choice=False)
    aggravating = SelectMultipleField("Aggravating factors", choices=options(AGGRAVATING), validate_choice=False)
    mitigating = SelectMultipleField("Mitigating factors", choices=options(MITIGATING), validate_choice=False)


class OutcomeForm(FlaskForm):
    finding = SelectField("Finding", choices=options(FINDINGS, "Choose"), validate_choice=False)
    sanction = SelectField("Sanction", choices=options(SANCTIONS), validate_choice=False)
    words = TextAreaField(
        "What to tell the reporter, in your own words",
        validators=[Length(max=20000)],  # required: portal.domain.decisions says so, with the finding's problems
    )


class SecondLookForm(FlaskForm):
    """A supervisor's second look at a "no case to answer" or "no further action": agree, or send it back."""

    decision = SelectField(
        "Your decision",
        choices=options({"agree": "Agree: the outcome takes effect", "send-back": "Send it back to the handler"}),
        validate_choice=False,
    )
    reasons = TextAreaField("Reasons for sending it back", validators=[Length(max=5000)])


class RevealForm(FlaskForm):
    reason = StringField(
        "Reason for seeing the reporter's identity",
        validators=[DataRequired("Give the reason: it is recorded in the audit trail."), Length(max=300)],
    )


class EmptyForm(FlaskForm):
    pass


class Reg19Form(FlaskForm):
    """A Regulation 19 written notice given (issue 17, step 6)."""

    given_on = DateField("Date the notice was given", validators=[DataRequired("Give the date the notice was given.")])
    given_to = SelectField("Given to", choices=[], validate_choice=False)
