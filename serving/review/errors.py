"""The review workflow's errors: what a case's state or a user's role does not allow, a missing
case or facility, a decision form's field errors, and an edit conflict."""

from __future__ import annotations

from typing import Any


class WorkflowError(Exception):
    """An action the case's state or the user's role does not allow; `key` names the message."""

    def __init__(self, key: str, **detail: Any):
        super().__init__(key)
        self.key, self.detail = key, detail


class NotFound(WorkflowError):
    pass


class Invalid(WorkflowError):
    """Field errors of a decision form: field -> message key."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("invalid")
        self.errors = errors


class Conflict(WorkflowError):
    """Someone changed the case since the form was loaded; `case` is its state now."""

    def __init__(self, case: dict):
        super().__init__("conflict")
        self.case = case
