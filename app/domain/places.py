"""Names people know for the places of the network: never a raw id on a customer's page.

A place (region, hub, node) may carry a display name per language (`names` in the inventory,
e.g. `{"en": "Riverside", "de": "Flussufer"}`) and a plain `name`. A reader is shown the name
in their language, else the one in the default language, else the plain name, else the id
made readable ("node-a" -> "Node A").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

DEFAULT_LANGUAGE = "en"
_SEPARATORS = re.compile(r"[-_.:\s]+")


def humanise(place_id: str) -> str:
    """`node-a` -> `Node A`, `hub_north.2` -> `Hub North 2`."""
    words = [w for w in _SEPARATORS.split(place_id) if w]
    return " ".join(w[:1].upper() + w[1:] for w in words) or place_id


def place_name(
    place_id: str,
    language: str,
    names: Mapping[str, str] | None = None,
    name: str | None = None,
) -> str:
    """The name to show a reader of `language` for the place `place_id`."""
    names = names or {}
    for candidate in (names.get(language), names.get(DEFAULT_LANGUAGE), name):
        if candidate and candidate.strip():
            return candidate.strip()
    return humanise(place_id)
