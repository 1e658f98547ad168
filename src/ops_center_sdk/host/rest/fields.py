"""Field types the resource bodies share."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from .common import check_id

#: A client-chosen record id (``device-1``, ``org.main``...).
RecordId = Annotated[str, AfterValidator(check_id)]

#: A display name: not blank (surrounding spaces are dropped), at most 200 characters.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

#: A short free word such as a device type.
Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

#: Free text such as an alert message.
Text = Annotated[str, StringConstraints(max_length=10_000)]

#: An id naming a record that may not be the host's (a device of another system, or
#: one since deleted): kept exactly as given; not empty, at most 256 characters.
ForeignId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
