"""Staff sign-in and account forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    email = EmailField("Email address", validators=[DataRequired("Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class CodeForm(FlaskForm):
    code = StringField(
        "Code from your authenticator app",
        validators=[DataRequired("Enter the 6-digit code, or one of your recovery codes.")],
    )


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    new_password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a new password."), Length(min=12, message="Use at least 12 characters.")],
    )
    confirm = PasswordField(
        "New password again", validators=[EqualTo("new_password", message="The two new passwords are not the same.")]
    )


class EmptyForm(FlaskForm):
    pass
