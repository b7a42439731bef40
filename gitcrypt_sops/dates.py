"""The standard date and time types, taken from CPython's C implementation directly.

``import datetime`` first runs the module's pure-Python twin of every class
(about 5 % of a small command's run) and then rebinds the names to the C
module's classes; these are those same class objects, without that cost.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import date, datetime, time, timedelta, timezone
else:
    try:
        from _datetime import date, datetime, time, timedelta, timezone
    except ImportError:  # pragma: no cover - an interpreter without the C module
        from datetime import date, datetime, time, timedelta, timezone

__all__ = ["date", "datetime", "time", "timedelta", "timezone"]
