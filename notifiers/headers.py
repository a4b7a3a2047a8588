"""Header values every mail reader decodes to the text we meant.

A non-ASCII header is sent as RFC 2047 encoded words. Whitespace *between* two encoded words
is folding, which readers drop when they decode; so each space of the text must travel inside
an encoded word. The stdlib folder (Python 3.11, `email.policy.default` and `SMTP`) sometimes
breaks a line at a space and leaves that space between two encoded words, and the reader shows
"truyềnhình". `encode_header_value` keeps every space inside the encoded word before it and
folds only between encoded words. It also folded a long ASCII subject before its first word,
which readers then show with a leading space; ASCII is folded here before a space instead.
"""

from __future__ import annotations

import base64

_PREFIX, _SUFFIX = "=?utf-8?b?", "?="
# RFC 2047: an encoded word is at most 75 characters; RFC 5322: a line at most 78, and the
# first line also holds "Name: ". A generator refolds (the buggy way) any longer line.
_MAX_WORD, _MAX_LINE = 75, 78


def _max_bytes(name: str) -> int:
    """The UTF-8 bytes one encoded word may carry so that every line stays short enough."""
    word = min(_MAX_WORD, _MAX_LINE - len(name) - 2)
    return (word - len(_PREFIX) - len(_SUFFIX)) // 4 * 3


def _encoded_word(text: str) -> str:
    return _PREFIX + base64.b64encode(text.encode()).decode("ascii") + _SUFFIX


def _chunks(text: str, limit: int) -> list[str]:
    """Split `text` into pieces of at most `limit` UTF-8 bytes, at spaces when it can
    (each space stays at the end of the piece before it), never inside a character."""
    pieces: list[str] = []
    current = ""
    for word in text.replace(" ", " \0").split("\0"):
        if len((current + word).encode()) <= limit:
            current += word
            continue
        if current:
            pieces.append(current)
            current = ""
        for char in word:  # a word longer than one encoded word is cut between characters
            if len((current + char).encode()) > limit:
                pieces.append(current)
                current = ""
            current += char
    if current:
        pieces.append(current)
    return pieces


def _fold_ascii(name: str, text: str, linesep: str) -> str | None:
    """Fold ASCII `text` before spaces (unfolding gives it back exactly); None if a word is
    too long for a line."""
    lines = [""]
    budget = _MAX_LINE - len(name) - 2
    for n, word in enumerate(text.split(" ")):
        piece = word if n == 0 else " " + word
        if lines[-1] and len(lines[-1]) + len(piece) > budget:
            lines.append("")
            budget = _MAX_LINE
        lines[-1] += piece
        if len(lines[-1]) > budget:
            return None
    return linesep.join(lines)


def encode_header_value(name: str, text: str, *, linesep: str = "\r\n") -> str:
    """Return `text` as the folded value of header `name`, every line short enough that no
    generator refolds it: ASCII folded before its spaces, anything else as one encoded word
    per line, each holding its own spaces."""
    text = " ".join(text.split())
    if text.isascii():
        folded = _fold_ascii(name, text, linesep)
        if folded is not None:
            return folded
    pieces = _chunks(text, _max_bytes(name))
    return (linesep + " ").join(_encoded_word(piece) for piece in pieces)
