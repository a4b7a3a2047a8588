"""Which locale formats a customer's dates and numbers: their own, or their language where
their time zone is (English in Europe/London is en_GB, "12/03/2026, 14:41", not US "3/12/26")."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError, localedata
from babel.core import get_global


def check_locale(value: str) -> str:
    """Return a BCP 47 tag (`en-GB`, `es-MX`) in its canonical form; refuse one Babel lacks."""
    try:
        parsed = Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError("unknown locale, e.g. en-GB, es-MX, de-AT") from None
    return "-".join(part for part in (parsed.language, parsed.script, parsed.territory) if part)


@lru_cache(maxsize=4096)
def notice_locale(language: str, timezone: str, locale: str | None = None) -> str:
    """The Babel locale id for a customer: `locale` when given, else the language in the
    territory of the time zone when Babel knows that pair, else the language alone."""
    if locale:
        return locale.replace("-", "_")
    zone = get_global("zone_aliases").get(timezone, timezone)
    territory = get_global("zone_territories").get(zone)
    if territory and localedata.exists(f"{language}_{territory}"):
        return f"{language}_{territory}"
    return language
