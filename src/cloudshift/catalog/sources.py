"""Where the catalogue's figures come from: every row names one of these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Source:
    """Where figures come from: a price page, an API, a measurement, a user's file."""

    id: str
    title: str
    url: str
    as_of: str

    def cite(self) -> str:
        return f"{self.title}, {self.as_of}"
