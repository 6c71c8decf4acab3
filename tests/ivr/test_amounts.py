"""Amounts on the phone, as pure functions: keypad entries to minor units, words."""

import pytest

from payments.ivr.amounts import (
    AmountError,
    check_bounds,
    number_words,
    parse_star_entry,
    parse_units_and_cents,
    parse_whole_units,
    spoken_amount,
    unit_names,
)


@pytest.mark.parametrize(
    "n,words",
    [
        (0, "zero"),
        (7, "seven"),
        (15, "fifteen"),
        (21, "twenty-one"),
        (40, "forty"),
        (105, "one hundred five"),
        (234, "two hundred thirty-four"),
        (1000, "one thousand"),
        (1100, "eleven hundred"),
        (1250, "twelve hundred fifty"),
        (2050, "two thousand fifty"),
        (9999, "ninety-nine hundred ninety-nine"),
        (10_000, "ten thousand"),
        (12_345, "twelve thousand three hundred forty-five"),
        (999_999, "nine hundred ninety-nine thousand nine hundred ninety-nine"),
        (1_000_000, "one million"),
    ],
)
def test_number_words(n, words):
    assert number_words(n) == words


@pytest.mark.parametrize(
    "minor,currency,words",
    [
        (1250, "USD", "twelve dollars and fifty cents"),
        (100, "USD", "one dollar"),
        (101, "USD", "one dollar and one cent"),
        (5, "USD", "five cents"),
        (1250, "JPY", "twelve hundred fifty yen"),
        (1, "JPY", "one yen"),
        (1234, "KWD", "one dinar and two hundred thirty-four fils"),
        (2500, "BHD", "two dinars and five hundred fils"),
        (1001, "GBP", "ten pounds and one penny"),
        (1050, "GBP", "ten pounds and fifty pence"),
        (99_999_999, "EUR", "nine hundred ninety-nine thousand nine hundred ninety-nine euros and ninety-nine cents"),
        (1250, "THB", "twelve point 5 0 T H B"),  # no unit names known: figures
    ],
)
def test_spoken_amounts_in_english(minor, currency, words):
    assert spoken_amount(minor, currency, "en-GB") == words


@pytest.mark.parametrize(
    "minor,currency,language,text",
    [
        (1250, "EUR", "fr-FR", "12,50 EUR"),
        (1250, "EUR", "de-DE", "12,50 EUR"),
        (1234, "KWD", "es-ES", "1,234 KWD"),
        (1250, "JPY", "it-IT", "1250 JPY"),
    ],
)
def test_spoken_amounts_in_other_languages_are_correct_figures(minor, currency, language, text):
    assert spoken_amount(minor, currency, language) == text


def test_unit_names_for_prompts():
    assert unit_names("USD") == ("dollars", "cents")
    assert unit_names("KWD") == ("dinars", "fils")
    assert unit_names("JPY") == ("yen", "decimals")
    assert unit_names("THB") == ("T H B", "decimals")


@pytest.mark.parametrize(
    "whole,cents,currency,minor",
    [
        ("12", "50", "USD", 1250),
        ("12", "5", "USD", 1205),
        ("12", "", "USD", 1200),
        ("0", "01", "USD", 1),
        ("0012", "00", "USD", 1200),
        ("1", "234", "KWD", 1234),
        ("1", "5", "KWD", 1005),
        ("1250", "", "JPY", 1250),
        ("999999", "99", "USD", 99_999_999),
    ],
)
def test_units_then_cents(whole, cents, currency, minor):
    assert parse_units_and_cents(whole, cents, currency) == minor


@pytest.mark.parametrize(
    "whole,cents,currency,code",
    [
        ("", "50", "USD", "no_input"),
        ("12", "505", "USD", "decimals"),
        ("1", "2345", "KWD", "decimals"),
        ("12", "5", "JPY", "decimals"),
        ("1000000", "", "USD", "above_maximum"),
        ("12#", "", "USD", "unreadable"),
    ],
)
def test_units_then_cents_refusals(whole, cents, currency, code):
    with pytest.raises(AmountError) as caught:
        parse_units_and_cents(whole, cents, currency)
    assert caught.value.code == code


def test_whole_units_alone():
    assert parse_whole_units("42", "USD") == 4200
    assert parse_whole_units("42", "JPY") == 42


@pytest.mark.parametrize(
    "entry,currency,minor",
    [
        ("12*50", "USD", 1250),
        ("12*5", "USD", 1250),
        ("12", "USD", 1200),
        ("*5", "USD", 50),
        ("12*", "USD", 1200),
        ("1*234", "KWD", 1234),
        ("1*2", "KWD", 1200),
        ("1250", "JPY", 1250),
    ],
)
def test_star_entries(entry, currency, minor):
    assert parse_star_entry(entry, currency) == minor


@pytest.mark.parametrize(
    "entry,currency,code",
    [
        ("", "USD", "no_input"),
        ("*", "USD", "unreadable"),
        ("1*2*3", "USD", "unreadable"),
        ("12*505", "USD", "decimals"),
        ("12*5", "JPY", "decimals"),
        ("1*2345", "KWD", "decimals"),
        ("1234567*00", "USD", "above_maximum"),
    ],
)
def test_star_entry_refusals(entry, currency, code):
    with pytest.raises(AmountError) as caught:
        parse_star_entry(entry, currency)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "amount,code",
    [(0, "zero"), (499, "below_minimum"), (50001, "above_maximum")],
)
def test_bounds(amount, code):
    with pytest.raises(AmountError) as caught:
        check_bounds(amount, minimum=500, maximum=50000)
    assert caught.value.code == code
    check_bounds(500, minimum=500, maximum=50000)
    check_bounds(50000, minimum=500, maximum=50000)
    check_bounds(1, minimum=None, maximum=None)
