"""xlinalg's exception type."""

from __future__ import annotations


class LinAlgError(ValueError):
    """A numerical failure of a linear-algebra operator on valid input: a matrix that is not
    positive definite, a singular matrix. ``operator`` names the operator and ``index`` the
    first failing batch entry (``()`` for an unbatched input)."""

    def __init__(self, message: str, *, operator: str | None = None, index: tuple = ()):
        super().__init__(message)
        self.operator = operator
        self.index = index
