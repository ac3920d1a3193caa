"""The reporter's forms. Field names are fixed by shared/SPEC.md."""

from __future__ import annotations

from datetime import date

from flask_wtf import FlaskForm
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
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Optional, Regexp, ValidationError

from ..routing import CATEGORIES
from ..workflow import MODES


class FriendlyDateField(DateField):
    """A date field whose format error is written for people, and which keeps what was typed."""

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(DATE_FORMAT_MESSAGE) from exc


DATE_FORMAT_MESSAGE = "Enter the date like 14/03/2026 or 14 March 2026."


MODE_MESSAGE = "Choose how you want to report: anonymously, confidentially or openly."
CATEGORY_MESSAGE = "Choose what your concern is about. If you are not sure, choose 'Something else'."


class ReportForm(FlaskForm):
    mode = RadioField(
        "How do you want to report?",
        choices=[SelectChoice(code, label) for code, (label, _) in MODES.items()],
        validators=[
            InputRequired(MODE_MESSAGE),
            AnyOf(list(MODES), message=MODE_MESSAGE),
        ],
        validate_choice=False,
    )
    category = RadioField(
        "What is your concern about?",
        choices=[SelectChoice(code, label) for code, (label, _) in CATEGORIES.items()],
        validators=[InputRequired(CATEGORY_MESSAGE), AnyOf(list(CATEGORIES), message=CATEGORY_MESSAGE)],
        validate_choice=False,
    )
    summary = StringField(
        "In one line, what happened?",
        validators=[
            DataRequired("Write a short summary of what happened."),
            Length(max=200, message="Keep the summary to 200 characters or fewer. Put the rest below."),
        ],
    )
    details = TextAreaField(
        "Tell us what happened",
        validators=[
            DataRequired("Tell us what happened, in your own words."),
            Length(max=20000, message="This is longer than 20,000 characters. Add the rest as a file."),
        ],
    )
    subject_name = StringField(
        "Their name, if you know it",
        validators=[Optional(), Length(max=200, message="Keep the name to 200 characters or fewer.")],
    )
    subject_staff_number = StringField(
        "Their warrant or staff number, if you know it",
        validators=[
            Optional(),
            Length(max=20, message="A warrant or staff number is 20 characters or fewer."),
            Regexp(
                r"^[A-Za-z0-9 \-./]*$",
                message="A warrant or staff number has only letters, numbers, spaces or hyphens.",
            ),
        ],
    )
    subject_command = SelectField("Their command, if you know it", choices=[], validate_choice=False)
    occurred_on = FriendlyDateField(
        "When did it happen?",
        validators=[Optional()],
        # Browsers with a date picker send 2026-03-14; people typing write it the British way.
        format=["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d %B %Y", "%d %b %Y"],
    )
    location = StringField(
        "Where did it happen?",
        validators=[Optional(), Length(max=300, message="Keep the place to 300 characters or fewer.")],
    )
    witnesses = TextAreaField(
        "Did anyone else see or know about it?",
        validators=[Optional(), Length(max=2000, message="Keep this to 2,000 characters or fewer.")],
    )
    fear_of_reprisal = BooleanField("I am worried about what could happen to me if I raise this")
    hold_until_corroborated = BooleanField("Hold my report until someone else raises a concern about the same person")
    reporter_name = StringField(
        "Your name",
        validators=[Optional(), Length(max=200, message="Keep your name to 200 characters or fewer.")],
    )
    reporter_contact = StringField(
        "How can the unit contact you? (optional)",
        validators=[Optional(), Length(max=300, message="Keep this to 300 characters or fewer.")],
    )
    email_updates = BooleanField(
        "Email me when there is an update (the email says only that, nothing about the report)"
    )
    attachments = MultipleFileField("Evidence (optional)")
    submission = HiddenField()

    def set_commands(self, commands: list[tuple[str, str]]) -> None:
        self.subject_command.choices = [SelectChoice("", "I don't know")] + [
            SelectChoice(code, f"{name} ({code})") for code, name in commands
        ]

    def validate_subject_command(self, field: SelectField) -> None:
        if field.data and field.data not in {choice.value for choice in field.choices}:
            raise ValidationError("Choose a command from the list, or 'I don't know'.")

    def validate_occurred_on(self, field: DateField) -> None:
        if field.data and field.data > date.today():
            raise ValidationError("The date it happened cannot be in the future.")

    def validate(self, extra_validators=None) -> bool:  # type: ignore[override]
        valid = super().validate(extra_validators)
        # Cross-field: confidential and named reports need the reporter's name (Optional() would skip it).
        if self.mode.data in ("confidential", "named") and not (self.reporter_name.data or "").strip():
            self.reporter_name.errors = [
                *self.reporter_name.errors,
                "Give your name, or choose to report anonymously if you do not want to.",
            ]
            valid = False
        # A held report is released by a matching concern: without a name or number nothing could match.
        if self.hold_until_corroborated.data and not (
            (self.subject_staff_number.data or "").strip() or (self.subject_name.data or "").strip()
        ):
            self.hold_until_corroborated.errors = [
                *self.hold_until_corroborated.errors,
                "To hold your report until someone else comes forward, give the person's name or number.",
            ]
            valid = False
        return valid


class ReceiptForm(FlaskForm):
    receipt = StringField(
        "Your receipt",
        validators=[DataRequired("Enter the receipt you were given when you sent your report.")],
    )


class ReplyForm(FlaskForm):
    message = TextAreaField(
        "Your message",
        validators=[
            DataRequired("Write a message, or add a file and say what it is."),
            Length(max=20000, message="This is longer than 20,000 characters. Add the rest as a file."),
        ],
    )
    attachments = MultipleFileField("Add files (optional)")


class WithdrawForm(FlaskForm):
    confirm = BooleanField(
        "I understand that my report and everything in it will be deleted",
        validators=[DataRequired("Tick the box to confirm that you want your report deleted.")],
    )


class SignOutForm(FlaskForm):
    pass
