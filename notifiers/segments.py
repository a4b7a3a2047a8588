"""How long an SMS is: its encoding, its length in encoding units and its number of segments.

GSM-7 (3GPP TS 23.038, the GSM 03.38 default alphabet) is used when every character is in the
basic table (1 septet) or the extension table (2 septets: an escape plus the character);
otherwise the whole message goes as UCS-2 and is counted in UTF-16 code units, so a character
outside the Basic Multilingual Plane (most emoji) counts 2.

One segment holds 160 GSM-7 septets or 70 UCS-2 units; a longer message is split into
concatenated segments of 153 septets or 67 units (the rest is the concatenation header).
Segments are packed the way gateways split them: an escape pair or a UTF-16 surrogate pair is
never cut in two, so a few messages need one segment more than ``ceil(units / 153)`` or
``ceil(units / 67)``. An empty text is 0 segments (there is nothing to send).

Spanish notices (the choice made in ``templates/es``): the SMS blocks are worded with GSM-7
letters only (ñ é ü ¿ ¡ are GSM-7; á í ó ú are not), e.g. "nuevo aviso" rather than "próxima
actualización", and say "TV" where ``render.SERVICE_NAMES`` has "televisión", as Spanish
operators commonly do. So a Spanish SMS is GSM-7 and at most 2 segments unless a value
brings in a letter outside GSM-7: a first name (María, Martín, Ramón, Concepción...), the
service "móvil" or the NOC's own words. Then the whole SMS goes as UCS-2, and the Spanish
SMS are kept short enough (at most 201 characters with realistic values) to stay within the
3 UCS-2 segments Vietnamese and Hindi get. The exceptions are an update carrying the NOC's
message, an ETA or a cause, and a maintenance notice naming its reason: those are only kept
within 2 segments while they are GSM-7.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The basic table, in code order 0x00-0x7F (0x1B, the escape to the extension table, left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The extension table: each is sent as escape + character, 2 septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SmsLength:
    """An SMS body measured: `units` are septets (GSM-7) or UTF-16 code units (UCS-2)."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    segments: int


def _pack(widths: list[int], single: int, multi: int) -> int:
    """Segments needed for characters of these widths, none split across two segments."""
    total = sum(widths)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for width in widths:
        if used + width > multi:
            segments, used = segments + 1, 0
        used += width
    return segments


def is_gsm7(text: str) -> bool:
    """Whether `text` can be sent in the GSM-7 alphabet (basic or extension table)."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def sms_length(text: str) -> SmsLength:
    """The encoding an SMS gateway would choose for `text`, its length and its segments."""
    if is_gsm7(text):
        widths = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return SmsLength("GSM-7", sum(widths), _pack(widths, GSM7_SINGLE, GSM7_MULTI))
    widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return SmsLength("UCS-2", sum(widths), _pack(widths, UCS2_SINGLE, UCS2_MULTI))
