"""Ready-made update texts the NOC can post by name, in every language customers choose."""

from __future__ import annotations

from enum import StrEnum

from app.outages.lifecycle import OutageState


class UpdateTemplate(StrEnum):
    ENGINEERS_DISPATCHED = "engineers_dispatched"
    REPAIR_IN_PROGRESS = "repair_in_progress"
    FIX_APPLIED = "fix_applied"


UPDATE_TEXTS: dict[UpdateTemplate, dict[str, str]] = {
    UpdateTemplate.ENGINEERS_DISPATCHED: {
        "en": "Our engineers are on their way to the fault.",
        "de": "Unsere Techniker sind auf dem Weg zur Störungsstelle.",
        "es": "Nuestros técnicos van de camino al lugar del fallo.",
        "vi": "Kỹ thuật viên của chúng tôi đang trên đường đến điểm sự cố.",
        "hi": "हमारे इंजीनियर खराबी की जगह पर पहुँच रहे हैं।",
    },
    UpdateTemplate.REPAIR_IN_PROGRESS: {
        "en": "The repair is under way.",
        "de": "Die Reparatur läuft.",
        "es": "Estamos reparando el fallo.",
        "vi": "Việc sửa chữa đang được tiến hành.",
        "hi": "मरम्मत का काम चल रहा है।",
    },
    UpdateTemplate.FIX_APPLIED: {
        "en": "A fix is in place; we are checking that everything works again.",
        "de": "Die Störung ist behoben; wir prüfen, ob alles wieder funktioniert.",
        "es": "Hemos reparado el fallo; comprobamos que todo funcione de nuevo.",
        "vi": "Sự cố đã được khắc phục; chúng tôi đang kiểm tra lại mọi thứ.",
        "hi": "खराबी ठीक कर दी गई है; हम जाँच रहे हैं कि सब कुछ फिर से काम कर रहा है।",
    },
}

# The state a template implies when the update does not name one.
TEMPLATE_STATE: dict[UpdateTemplate, OutageState] = {
    UpdateTemplate.FIX_APPLIED: OutageState.MONITORING,
}


def update_text(
    messages: dict[str, str], template: str | None, language: str, fallback: str | None = None
) -> str:
    """The update's words in `language`: its own text, else the text of the fallback language
    the NOC named, else the template's; else nothing (never another language unasked)."""
    if language in messages:
        return messages[language]
    if fallback is not None and fallback in messages:
        return messages[fallback]
    if template is not None:
        texts = UPDATE_TEXTS[UpdateTemplate(template)]
        return texts.get(language, texts["en"])
    return ""
