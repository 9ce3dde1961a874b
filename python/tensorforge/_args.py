"""Argument checks shared by the small public functions."""
import operator


def integer_in_range(value, what, low=None, high=None):
    """``value`` as an int (bools refused), checked against ``low <= value <= high``;
    TypeError / ValueError messages start with ``what`` (e.g. "manual_seed: seed")."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {type(value).__name__}") from None
    if low is not None and value < low:
        raise ValueError(f"{what} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{what} must be <= {high}, got {value}")
    return value
