"""SMS length: GSM-7 or UCS-2, units and segments, the way a gateway splits a message."""

from __future__ import annotations

import pytest

from notifiers.segments import GSM7_BASIC, GSM7_EXTENSION, SmsLength, is_gsm7, sms_length


def test_the_gsm7_tables_have_the_size_the_standard_gives_them() -> None:
    assert len(GSM7_BASIC) == 127  # 128 codes, one of them the escape to the extension table
    assert len(GSM7_EXTENSION) == 10


def test_an_empty_text_is_no_segment_at_all() -> None:
    assert sms_length("") == SmsLength(encoding="GSM-7", units=0, segments=0)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_holds_160_in_one_segment_then_153_in_each(length: int, segments: int) -> None:
    assert sms_length("a" * length) == SmsLength("GSM-7", length, segments)


def test_german_and_spanish_letters_of_the_basic_table_stay_gsm7() -> None:
    text = "äöüßÄÖÜ éñÑ¿¡ àèùìò Ç Øø Åå Ææ É @£$¥§ _ ΔΦΓΛΩΠΨΣΘΞ \n\r"
    assert sms_length(text) == SmsLength("GSM-7", len(text), 1)
    assert sms_length("ä" * 160).segments == 1  # 'ä' is GSM-7: 160 still fit in one


@pytest.mark.parametrize("char", ["^", "{", "}", "\\", "[", "~", "]", "|", "€", "\f"])
def test_the_extension_table_costs_two_septets(char: str) -> None:
    assert sms_length(char) == SmsLength("GSM-7", 2, 1)


def test_extension_characters_count_twice_towards_the_segments() -> None:
    assert sms_length("€" * 80) == SmsLength("GSM-7", 160, 1)
    assert sms_length("€" * 81) == SmsLength("GSM-7", 162, 2)
    assert sms_length("Price: 5 €") == SmsLength("GSM-7", 11, 1)


def test_an_escape_pair_is_never_split_across_two_segments() -> None:
    # 306 septets would fit in 2 x 153, but the euro sign cannot start at septet 153.
    text = "a" * 152 + "€" + "a" * 152
    assert sms_length(text) == SmsLength("GSM-7", 306, 3)


@pytest.mark.parametrize("char", ["á", "í", "ó", "ú", "ê", "ç", "ệ", "न", "`"])
def test_one_letter_outside_gsm7_makes_the_whole_message_ucs2(char: str) -> None:
    text = "Hola, su servicio funciona de nuevo " + char
    assert not is_gsm7(text)
    assert sms_length(text) == SmsLength("UCS-2", len(text), 1)


@pytest.mark.parametrize(
    ("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_holds_70_in_one_segment_then_67_in_each(length: int, segments: int) -> None:
    assert sms_length("á" * length) == SmsLength("UCS-2", length, segments)


def test_vietnamese_and_hindi_are_ucs2_one_unit_a_letter() -> None:
    vietnamese = "Dịch vụ Internet đã hoạt động lại"
    hindi = "आपकी इंटरनेट सेवा फिर चालू है"
    assert sms_length(vietnamese) == SmsLength("UCS-2", len(vietnamese), 1)
    assert sms_length(hindi) == SmsLength("UCS-2", len(hindi), 1)


def test_in_ucs2_the_euro_sign_is_one_unit_like_any_other() -> None:
    assert sms_length("á€") == SmsLength("UCS-2", 2, 1)


def test_an_emoji_is_two_utf16_units() -> None:
    assert sms_length("😀") == SmsLength("UCS-2", 2, 1)
    assert sms_length("😀" * 35) == SmsLength("UCS-2", 70, 1)
    assert sms_length("a" * 69 + "😀") == SmsLength("UCS-2", 71, 2)


def test_a_surrogate_pair_is_never_split_across_two_segments() -> None:
    # 134 units would fit in 2 x 67, but the emoji cannot start at unit 67.
    text = "a" * 66 + "😀" + "a" * 66
    assert sms_length(text) == SmsLength("UCS-2", 134, 3)
