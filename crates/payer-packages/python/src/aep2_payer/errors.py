"""The one exception type of the package: every refusal carries a stable AEP2 reason code."""

from __future__ import annotations


class Aep2Error(ValueError):
    """A refusal with a reason code of spec/aep2.md §13 (e.g. ``request_descriptor_invalid``), or
    ``spend_limit`` when the payer's own cap refuses a price."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
