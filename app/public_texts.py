"""The words of the public status pages, in every language customers are told in."""

from __future__ import annotations

from babel import Locale, UnknownLocaleError

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Service disruption",
        "services": "Affected services",
        "all": "all services",
        "area": "Area",
        "started": "Started",
        "cause": "Cause",
        "eta": "Expected fix",
        "next_update": "Next update by",
        "resolved": "Resolved",
        "timeline": "What happened",
        "suspected": "Checking",
        "open": "Disrupted",
        "identified": "Cause found",
        "monitoring": "Fixed, being checked",
        "resolved_state": "Resolved",
        "cancelled": "No disruption",
        "update": "Update",
        "times": "Times in {zone}",
    },
    "de": {
        "title": "Störung",
        "services": "Betroffene Dienste",
        "all": "alle Dienste",
        "area": "Gebiet",
        "started": "Seit",
        "cause": "Ursache",
        "eta": "Voraussichtlich behoben",
        "next_update": "Nächstes Update bis",
        "resolved": "Behoben",
        "timeline": "Verlauf",
        "suspected": "Wird geprüft",
        "open": "Gestört",
        "identified": "Ursache gefunden",
        "monitoring": "Behoben, wird überwacht",
        "resolved_state": "Behoben",
        "cancelled": "Keine Störung",
        "update": "Update",
        "times": "Zeiten in {zone}",
    },
    "es": {
        "title": "Incidencia",
        "services": "Servicios afectados",
        "all": "todos los servicios",
        "area": "Zona",
        "started": "Desde",
        "cause": "Causa",
        "eta": "Reparación prevista",
        "next_update": "Próxima actualización antes de",
        "resolved": "Resuelta",
        "timeline": "Historial",
        "suspected": "En comprobación",
        "open": "Con incidencia",
        "identified": "Causa encontrada",
        "monitoring": "Reparada, en observación",
        "resolved_state": "Resuelta",
        "cancelled": "Sin incidencia",
        "update": "Actualización",
        "times": "Horas en {zone}",
    },
    "vi": {
        "title": "Sự cố dịch vụ",
        "services": "Dịch vụ bị ảnh hưởng",
        "all": "tất cả dịch vụ",
        "area": "Khu vực",
        "started": "Bắt đầu",
        "cause": "Nguyên nhân",
        "eta": "Dự kiến khắc phục",
        "next_update": "Cập nhật tiếp theo trước",
        "resolved": "Đã khắc phục",
        "timeline": "Diễn biến",
        "suspected": "Đang kiểm tra",
        "open": "Đang gián đoạn",
        "identified": "Đã tìm ra nguyên nhân",
        "monitoring": "Đã sửa, đang theo dõi",
        "resolved_state": "Đã khắc phục",
        "cancelled": "Không có sự cố",
        "update": "Cập nhật",
        "times": "Giờ {zone}",
    },
    "hi": {
        "title": "सेवा में बाधा",
        "services": "प्रभावित सेवाएँ",
        "all": "सभी सेवाएँ",
        "area": "क्षेत्र",
        "started": "शुरू",
        "cause": "कारण",
        "eta": "ठीक होने का अनुमान",
        "next_update": "अगला अपडेट",
        "resolved": "ठीक हो गया",
        "timeline": "घटनाक्रम",
        "suspected": "जाँच जारी",
        "open": "बाधित",
        "identified": "कारण मिला",
        "monitoring": "ठीक किया गया, निगरानी जारी",
        "resolved_state": "ठीक हो गया",
        "cancelled": "कोई बाधा नहीं",
        "update": "अपडेट",
        "times": "समय {zone} में",
    },
}


# The maintenance page's own words; the rest (services, area, times) comes from TEXTS.
MAINTENANCE_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Planned maintenance",
        "scheduled": "Scheduled",
        "in_progress": "In progress",
        "completed": "Completed",
        "disrupted": "Work finished; we are fixing a disruption in this area",
        "from": "From",
        "until": "Until",
        "why": "Why",
    },
    "de": {
        "title": "Geplante Wartungsarbeiten",
        "scheduled": "Geplant",
        "in_progress": "Läuft",
        "completed": "Abgeschlossen",
        "disrupted": "Arbeiten beendet; wir beheben eine Störung in diesem Gebiet",
        "from": "Von",
        "until": "Bis",
        "why": "Grund",
    },
    "es": {
        "title": "Mantenimiento programado",
        "scheduled": "Programado",
        "in_progress": "En curso",
        "completed": "Completado",
        "disrupted": "Trabajos terminados; estamos resolviendo una incidencia en esta zona",
        "from": "Desde",
        "until": "Hasta",
        "why": "Motivo",
    },
    "vi": {
        "title": "Bảo trì theo kế hoạch",
        "scheduled": "Đã lên lịch",
        "in_progress": "Đang thực hiện",
        "completed": "Đã hoàn tất",
        "disrupted": "Công việc đã xong; chúng tôi đang khắc phục một sự cố trong khu vực này",
        "from": "Từ",
        "until": "Đến",
        "why": "Lý do",
    },
    "hi": {
        "title": "नियोजित रखरखाव",
        "scheduled": "निर्धारित",
        "in_progress": "जारी है",
        "completed": "पूरा हुआ",
        "disrupted": "काम पूरा हुआ; हम इस क्षेत्र में एक बाधा ठीक कर रहे हैं",
        "from": "से",
        "until": "तक",
        "why": "कारण",
    },
}


def pick_language(requested: str | None, accept_language: str | None) -> str:
    """`?lang=` if it is one of ours, else the best match of Accept-Language, else English."""
    if requested in TEXTS:
        return requested
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().replace("_", "-")
        if not tag:
            continue
        try:
            language = Locale.parse(tag, sep="-").language
        except (ValueError, UnknownLocaleError):
            continue
        if language in TEXTS:
            return language
    return "en"
