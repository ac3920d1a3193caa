"""Administration forms. CSRF is checked globally for staff forms; the dry run is a GET and changes nothing."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from portal.core.routing import CATEGORIES
from portal.domain.accounts import MIN_PASSWORD_LENGTH, ROLES
from portal.domain.settings import MAX_DAYS, MIN_DAYS

# The queue name is the command name followed by this, and must fit the queues.name column (100).
QUEUE_NAME_SUFFIX = " Professional Standards Unit"
MAX_COMMAND_NAME = 100 - len(QUEUE_NAME_SUFFIX)


class WholeNumberField(IntegerField):
    """An integer field whose bad input is reported once, by its range validator's plain message."""

    def process_formdata(self, valuelist: list[str]) -> None:
        if valuelist:
            text = (valuelist[0] or "").strip()
            self.data = int(text) if text.isdigit() and len(text) <= 9 else None


def options(labels: dict[str, str] | list[tuple[str, str]], blank: str | None = None) -> list[SelectChoice]:
    pairs = labels.items() if isinstance(labels, dict) else labels
    leading = [SelectChoice("", blank)] if blank is not None else []
    return leading + [SelectChoice(value, label) for value, label in pairs]


class CreateAccountForm(FlaskForm):
    email = EmailField(
        "Email address",
        validators=[DataRequired("Enter the officer's work email address."), Length(max=254)],
    )
    name = StringField(
        "Full name",
        validators=[
            DataRequired("Enter the officer's name."),
            Length(max=200, message="Keep the name to 200 characters."),
        ],
    )
    role = SelectField(
        "Role", choices=options(ROLES, "Choose a role"), validators=[DataRequired("Choose the account's role.")]
    )
    staff_number = StringField(
        "Warrant or staff number (optional)",
        validators=[
            Optional(),
            Length(max=20, message="A warrant or staff number is 20 characters or fewer."),
            Regexp(r"^[A-Za-z0-9 \-./]*$", message="A warrant or staff number has only letters, numbers and spaces."),
        ],
    )
    command = SelectField("Command (optional)", choices=[], validate_choice=False)
    password = PasswordField(
        "Initial password",
        validators=[
            DataRequired("Enter an initial password."),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=200,
                message=f"Use a password of {MIN_PASSWORD_LENGTH} to 200 characters; a few words work well.",
            ),
        ],
    )

    def set_commands(self, commands: list[tuple[str, str]]) -> None:
        self.command.choices = options([(code, f"{name} ({code})") for code, name in commands], "None")

    def validate_command(self, field: SelectField) -> None:
        if field.data and field.data not in {choice.value for choice in field.choices}:
            raise ValidationError("Choose a command from the list, or None.")


class QueueChoiceForm(FlaskForm):
    queue = SelectField("Queue", choices=[], validate_choice=False, validators=[DataRequired("Choose a queue.")])


class RuleEditForm(FlaskForm):
    target = StringField(
        "Send to",
        validators=[DataRequired("Say which queue the rule sends to."), Length(max=40)],
    )
    reason = StringField(
        "Reason shown to handlers",
        validators=[DataRequired("Give the reason handlers will see."), Length(max=300)],
    )
    commands = StringField("Command codes", validators=[Length(max=300)])
    categories = StringField("Category codes", validators=[Length(max=500)])
    count = StringField("Number of earlier concerns", validators=[Length(max=10)])


class DryRunForm(FlaskForm):
    """A sample report's routing facts. Read from the query string: nothing is stored or audited."""

    class Meta:
        csrf = False

    category = SelectField(
        "Category",
        choices=options({code: label for code, (label, _) in CATEGORIES.items()}),
        validators=[InputRequired("Choose a category.")],
    )
    subject_command = SelectField("Subject's command", choices=[], validate_choice=False)
    fear_of_reprisal = BooleanField("The reporter fears reprisal")
    earlier_concerns = WholeNumberField(
        "Earlier concerns about the same person",
        default=0,
        validators=[
            Optional(),
            NumberRange(min=0, max=10000, message="Give a whole number of earlier concerns, 0 or more."),
        ],
    )

    def set_commands(self, commands: list[tuple[str, str]]) -> None:
        self.subject_command.choices = options([(code, f"{name} ({code})") for code, name in commands], "Not known")

    def validate_subject_command(self, field: SelectField) -> None:
        if field.data and field.data not in {choice.value for choice in field.choices}:
            raise ValidationError("Choose a command from the list, or Not known.")


def _days_field(label: str) -> WholeNumberField:
    message = f"Give a whole number of days from {MIN_DAYS} to {MAX_DAYS}."
    return WholeNumberField(
        label,
        validators=[InputRequired(message), NumberRange(min=MIN_DAYS, max=MAX_DAYS, message=message)],
    )


class ClockForm(FlaskForm):
    acknowledge_within_days = _days_field("Days to acknowledge a new report")
    update_every_days = _days_field("Days between updates to the reporter")


class CommandForm(FlaskForm):
    code = StringField(
        "Command code",
        filters=[lambda value: (value or "").strip().upper()],
        validators=[
            DataRequired("Enter the command's code."),
            Regexp(r"^[A-Z]{2,8}$", message="A command code is 2 to 8 letters, such as CE."),
        ],
    )
    name = StringField(
        "Command name",
        filters=[lambda value: " ".join((value or "").split())],
        validators=[
            DataRequired("Enter the command's name."),
            Length(max=MAX_COMMAND_NAME, message=f"Keep the name to {MAX_COMMAND_NAME} characters or fewer."),
        ],
    )
