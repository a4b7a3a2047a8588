"""Settings refuse bad values by name; logs never carry a phone number or e-mail in clear."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.logs import mask_email, mask_phone, mask_text
from app.settings import Role, Settings, parse_api_tokens


def test_api_tokens_parse_names_roles_and_secrets() -> None:
    tokens = parse_api_tokens("noc:engineer:0123456789abcdef, ops:viewer:fedcba9876543210")
    assert [(t.name, t.role) for t in tokens] == [("noc", Role.ENGINEER), ("ops", Role.VIEWER)]
    assert tokens[0].token.get_secret_value() == "0123456789abcdef"
    assert "0123456789abcdef" not in repr(tokens)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("noc:engineer", "not name:role:token"),
        ("noc:root:0123456789abcdef", "use one of viewer, engineer, admin"),
        ("noc:admin:short", "shorter than 16"),
    ],
)
def test_bad_api_tokens_say_what_is_wrong(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_api_tokens(raw)


def test_settings_read_tokens_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREWARN_API_TOKENS", "noc:admin:0123456789abcdef")
    monkeypatch.setenv("FOREWARN_TOPIC_PREFIX", "prod.")
    settings = Settings()
    assert settings.api_tokens[0].role is Role.ADMIN
    assert settings.topic("telemetry") == "prod.telemetry"
    assert settings.topic("telemetry.dlq") == "prod.telemetry.dlq"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FOREWARN_API_PORT", "eighty"),
        ("FOREWARN_DATABASE_URL", "mysql://localhost/forewarn"),
        ("FOREWARN_SMS_GATEWAY_URL", "ftp://gateway"),
        ("FOREWARN_LOG_FORMAT", "xml"),
    ],
)
def test_a_bad_setting_is_refused_with_its_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    field = variable.removeprefix("FOREWARN_").lower()
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_phone_numbers_and_addresses_are_masked_in_free_text() -> None:
    text = mask_text("sent to +4915112345678 and anna.weber@example.com")
    assert "+4915112345678" not in text and "anna.weber@example.com" not in text
    assert mask_phone("+4915112345678") == "+49•••••••5678"
    assert mask_email("anna@example.com") == "a•••@example.com"


def test_structured_logs_mask_personal_data_even_inside_nested_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import structlog

    from app.logs import configure_logging

    configure_logging(fmt="json", level="info")
    try:
        structlog.get_logger("test").info(
            "notice sent to +4915112345678",
            to="anna@example.com",
            extra={"phones": ["+447911123456"]},
        )
        output = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    assert "notice sent to" in output
    for secret in ("+4915112345678", "anna@example.com", "+447911123456"):
        assert secret not in output
