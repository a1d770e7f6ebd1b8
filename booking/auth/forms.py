"""Account forms: shape only (required, lengths, matching passwords)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError


@cache
def common_passwords() -> frozenset[str]:
    lines = (Path(__file__).parent / "common_passwords.txt").read_text().splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def not_common(form: FlaskForm, field: PasswordField) -> None:
    if (field.data or "").lower() in common_passwords():
        raise ValidationError(_l("This password is too common. Choose one that is harder to guess."))


def password_field(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[
            DataRequired(),
            Length(min=8, max=128, message=_l("Use between 8 and 128 characters.")),
            not_common,
        ],
    )


LANGUAGE_CHOICES = [SelectChoice("zh_Hans_CN", "中文（简体）"), SelectChoice("en", "English")]


class RegisterForm(FlaskForm):
    email = EmailField(_l("Work email"), validators=[DataRequired(), Email(), Length(max=254)])
    display_name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=100)])
    # the first choice is "please choose" (0): a member unit is a deliberate answer, never a default
    organisation = SelectField(
        _l("Member unit"), coerce=int, validators=[DataRequired(_l("Choose your member unit from the list."))]
    )
    password = password_field(_l("Password"))
    confirm = PasswordField(
        _l("Repeat the password"), validators=[DataRequired(), EqualTo("password", _l("The passwords differ."))]
    )


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)])
    remember = BooleanField(_l("Keep me logged in on this device"))


class ResetRequestForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])


class ResetForm(FlaskForm):
    password = password_field(_l("New password"))
    confirm = PasswordField(
        _l("Repeat the new password"), validators=[DataRequired(), EqualTo("password", _l("The passwords differ."))]
    )


class AccountForm(FlaskForm):
    display_name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=100)])
    organisation = SelectField(_l("Member unit"), coerce=int, validators=[DataRequired()])
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)
