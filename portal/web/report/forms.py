"""The reporter's forms. Field names are fixed by docs/SPEC.md."""

from __future__ import annotations

import re
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

from portal.core.attachments import CleanFile
from portal.core.codes import MODES
from portal.core.routing import CATEGORIES
from portal.domain.intake import NewReport


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
        "Their name (optional)",
        validators=[Optional(), Length(max=200, message="Keep the name to 200 characters or fewer.")],
    )
    subject_staff_number = StringField(
        "Their warrant or staff number (optional)",
        validators=[
            Optional(),
            Length(max=20, message="A warrant or staff number is 20 characters or fewer."),
            Regexp(
                r"^[A-Za-z0-9 \-./]*$",
                message="A warrant or staff number has only letters, numbers, spaces or hyphens.",
            ),
        ],
    )
    subject_command = SelectField("Their command (optional)", choices=[], validate_choice=False)
    occurred_on = FriendlyDateField(
        "When did it happen? (optional)",
        validators=[Optional()],
        # Browsers with a date picker send 2026-03-14; people typing write it the British way.
        format=["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d %B %Y", "%d %b %Y"],
    )
    location = StringField(
        "Where did it happen? (optional)",
        validators=[Optional(), Length(max=300, message="Keep the place to 300 characters or fewer.")],
    )
    witnesses = TextAreaField(
        "Did anyone else see or know about it? (optional)",
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
    reporter_email = StringField(
        "Your email address",
        validators=[Optional(), Length(max=300, message="An email address is 300 characters or fewer.")],
    )
    # The date as GOV.UK asks it: day, month and year boxes that keep what was typed (occurred_on, of docs/SPEC.md,
    # is still accepted from scripts). An "I am not sure" choice makes the date plainly optional.
    occurred_day = StringField("Day", validators=[Optional(), Length(max=10)])
    occurred_month = StringField("Month", validators=[Optional(), Length(max=10)])
    occurred_year = StringField("Year", validators=[Optional(), Length(max=10)])
    date_unsure = BooleanField("I am not sure of the exact date")
    attachments = MultipleFileField("Evidence (optional)")
    submission = HiddenField()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # A date sent as docs/SPEC.md's occurred_on is shown back in the boxes (and kept as sent: form.html).
        boxes = (self.occurred_day, self.occurred_month, self.occurred_year)
        if isinstance(self.occurred_on.data, date) and not any((box.data or "").strip() for box in boxes):
            when = self.occurred_on.data
            for box, part in zip(boxes, (when.day, when.month, when.year), strict=True):
                box.data = str(part)

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
        date_problem = self._date_from_boxes()
        valid = super().validate(extra_validators)
        if date_problem:
            self.occurred_on.errors = [*self.occurred_on.errors, date_problem]
            valid = False
        email_problems = email_choice_problems(self)
        for field, message in email_problems:
            field.errors = [*field.errors, message]
        valid = valid and not email_problems
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

    def _date_from_boxes(self) -> str | None:
        """Read the day, month and year boxes into occurred_on; a message if what they hold is not a date."""
        problem, when = date_from_boxes(self.occurred_day.data, self.occurred_month.data, self.occurred_year.data)
        if when is not None:
            self.occurred_on.data = when
        return problem

    def new_report(self, files: list[CleanFile]) -> NewReport:
        """What the reporter gave, validated, for intake (the attachments already checked)."""
        return NewReport(
            mode=self.mode.data,
            category=self.category.data,
            summary=self.summary.data.strip(),
            details=self.details.data.strip(),
            subject_name=(self.subject_name.data or "").strip(),
            subject_staff_number=(self.subject_staff_number.data or "").strip(),
            subject_command=self.subject_command.data or None,
            occurred_on=self.occurred_on.data,
            location=(self.location.data or "").strip(),
            witnesses=(self.witnesses.data or "").strip(),
            fear_of_reprisal=bool(self.fear_of_reprisal.data),
            reporter_name=(self.reporter_name.data or "").strip(),
            reporter_contact=contact_for(self),
            attachments=files,
            submission_token=self.submission.data,
            wants_email_updates=bool(self.email_updates.data),
            hold_until_corroborated=bool(self.hold_until_corroborated.data),
        )


MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


def date_from_boxes(day: str | None, month: str | None, year: str | None) -> tuple[str | None, date | None]:
    """(message, None) for boxes that do not make a date, (None, date) for ones that do, (None, None) if empty."""
    typed = [(part or "").strip() for part in (day, month, year)]
    if not any(typed):
        return None, None
    missing = [name for name, part in zip(("a day", "a month", "a year"), typed, strict=True) if not part]
    if missing:
        return (
            f"The date must include {' and '.join(missing)}. If you are not sure of the exact date, leave the boxes "
            "empty, tick 'I am not sure of the exact date' and say roughly when in what happened.",
            None,
        )
    day_text, month_text, year_text = typed
    month_number = MONTHS.index(month_text.lower()) + 1 if month_text.lower() in MONTHS else None
    if month_number is None and month_text[:3].lower() in [m[:3] for m in MONTHS]:
        month_number = [m[:3] for m in MONTHS].index(month_text[:3].lower()) + 1
    try:
        number = (int(day_text), month_number or int(month_text), int(year_text))
    except ValueError:
        return "Enter the date in numbers, for example 14 3 2026.", None
    if len(year_text) != 4:
        return "Enter the year as 4 numbers, for example 2026.", None
    try:
        return None, date(number[2], number[1], number[0])
    except ValueError:
        return (
            f"{day_text}/{month_text}/{year_text} is not a real date. Check the day and the month "
            "(for example, February has 28 days, or 29 in a leap year).",
            None,
        )


# One @, something before it, a domain with a dot after it, no spaces: what a person can check by eye.
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def _email_of(form: ReportForm) -> str:
    typed = (form.reporter_email.data or "").strip()
    contact = (form.reporter_contact.data or "").strip()
    return typed or (contact if "@" in contact and " " not in contact else "")


def email_choice_problems(form: ReportForm) -> list[tuple[object, str]]:
    """ "Email me" needs an email address that is one, and a mode that keeps it."""
    if not form.email_updates.data:
        return []
    if form.mode.data == "anonymous":
        return [
            (
                form.email_updates,
                "An anonymous report cannot get emails, because we keep nothing that could identify you. Untick "
                "'Email me', or report confidentially.",
            )
        ]
    email = _email_of(form)
    if not email:
        return [(form.reporter_email, "Enter your email address, or untick 'Email me'.")]
    if not EMAIL.fullmatch(email):
        return [(form.reporter_email, "Enter an email address like name@example.com, or untick 'Email me'.")]
    contact = (form.reporter_contact.data or "").strip()
    if contact and contact.lower() != email.lower():
        return [
            (
                form.reporter_contact,
                "Updates are emailed to the contact the unit has for you: leave this box empty to use your email "
                "address, or untick 'Email me'.",
            )
        ]
    return []


def contact_for(form: ReportForm) -> str:
    """The contact intake keeps: the email address when updates are emailed, else what was typed."""
    if form.email_updates.data and form.mode.data != "anonymous":
        return _email_of(form)
    return (form.reporter_contact.data or "").strip()


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
