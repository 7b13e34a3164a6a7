"""xlinalg's exception type, and its framework-flavoured subclasses."""

from __future__ import annotations


class LinAlgError(ValueError):
    """A numerical failure of a linear-algebra operator on valid input: a matrix that is not
    positive definite, a singular matrix, an input holding NaN or inf. ``operator`` names the
    operator and ``index`` the first failing batch entry (``()`` for an unbatched input).

    Raised from a library's arrays it is also an instance of that library's own error class
    where one exists (``numpy.linalg.LinAlgError``, ``torch.linalg.LinAlgError``), so code
    written against the library's error keeps working; see :func:`error_class`.
    """

    def __init__(self, message: str, *, operator: str | None = None, index: tuple = ()):
        super().__init__(message)
        self.operator = operator
        self.index = index

    def __reduce__(self):
        bases = type(self).__dict__.get("_extra_bases")
        if bases is None:  # LinAlgError itself or a user's subclass: the default protocol
            return super().__reduce__()
        return _restore, (bases, str(self), self.operator, self.index)


_classes: dict[tuple, type] = {}


def error_class(bases=None) -> type:
    """The exception class raised for failures on arrays of a library.

    Parameters
    ----------
    bases : type or tuple of type, optional
        The library's own error class(es), e.g. ``torch.linalg.LinAlgError``; ``None`` or
        ``()`` when the library has none.

    Returns
    -------
    type
        :class:`LinAlgError` itself without ``bases``, else a subclass of
        ``(LinAlgError, *bases)``, made once per ``bases``.
    """
    if bases is None:
        return LinAlgError
    bases = tuple(bases) if isinstance(bases, tuple) else (bases,)
    bases = tuple(b for b in bases if not issubclass(LinAlgError, b))
    if not bases:
        return LinAlgError
    cls = _classes.get(bases)
    if cls is None:
        names = ", ".join(f"{b.__module__}.{b.__qualname__}" for b in bases)
        cls = _classes[bases] = type(
            "LinAlgError",
            (LinAlgError, *bases),
            {
                "__module__": __name__,
                "__qualname__": f"LinAlgError[{names}]",
                "__doc__": f"xlinalg.LinAlgError that is also a {names}.",
                "_extra_bases": bases,
            },
        )
    return cls


def _restore(bases, message, operator, index):
    return error_class(bases)(message, operator=operator, index=index)
