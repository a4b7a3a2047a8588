"""How each language names the services a rule, a device or a maintenance window can list.

Notices (notifiers/render.py) and the public status pages (app/public.py) both speak of
services in these words; an unknown service shows its id.
"""

from __future__ import annotations

DEFAULT_LANGUAGE = "en"

SERVICE_NAMES: dict[str, dict[str, str]] = {
    "en": {"internet": "internet", "tv": "TV", "voice": "phone line", "mobile": "mobile"},
    "de": {"internet": "Internet", "tv": "TV", "voice": "Telefon", "mobile": "Mobilfunk"},
    "es": {"internet": "internet", "tv": "televisión", "voice": "teléfono", "mobile": "móvil"},
    "vi": {"internet": "Internet", "tv": "truyền hình", "voice": "điện thoại", "mobile": "di động"},
    "hi": {"internet": "इंटरनेट", "tv": "टीवी", "voice": "फ़ोन", "mobile": "मोबाइल"},
}
# A notice about no particular service speaks of "your service".
ANY_SERVICE = {"en": "service", "de": "Dienst", "es": "servicio", "vi": "dịch vụ", "hi": "सेवा"}


def service_name(service: str, language: str) -> str:
    """The word for `service` in `language` (English for a language we do not speak)."""
    names = SERVICE_NAMES.get(language, SERVICE_NAMES[DEFAULT_LANGUAGE])
    return names.get(service, service)
