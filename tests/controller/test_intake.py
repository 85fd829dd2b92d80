"""CSV intake: units, aliases, and every bad input named by row and field, with nothing half-read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.errors import InputError
from controller.intake import decode_csv, parse_packages_csv, read_packages_csv

HEADER = "key,weight,weight_unit,lat,lon,deadline,priority\n"


def test_pounds_and_kilograms_both_become_kilograms() -> None:
    rows = parse_packages_csv(HEADER + "a,10,lb,33.4,-112.2,,0\nb,2.5,kg,33.4,-112.2,,3\n")
    assert [round(p.weight_kg, 4) for p in rows] == [4.5359, 2.5]
    assert rows[1].priority == 3


def test_weight_column_variants() -> None:
    assert parse_packages_csv("key,weight_lb,lat,lon\na,5,33.4,-112.2\n")[0].weight_kg == pytest.approx(
        2.26796
    )
    assert parse_packages_csv("Key,Weight_KG,Latitude,Longitude\na,1.2,33.4,-112.2\n")[0].weight_kg == 1.2


def test_deadline_with_time_zone_is_read() -> None:
    (p,) = parse_packages_csv(HEADER + "a,1,kg,33.4,-112.2,2026-12-01T17:00:00-07:00,0\n")
    assert p.deadline is not None and p.deadline.utcoffset() is not None


def test_exact_repeat_is_kept_once_but_a_changed_repeat_is_refused() -> None:
    assert len(parse_packages_csv(HEADER + "a,1,kg,33.4,-112.2,,0\na,1,kg,33.4,-112.2,,0\n")) == 1
    with pytest.raises(InputError) as err:
        parse_packages_csv(HEADER + "a,1,kg,33.4,-112.2,,0\na,2,kg,33.4,-112.2,,0\n")
    assert err.value.row == 3 and err.value.field == "key" and "different content" in str(err.value)


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("a,-1,kg,33.4,-112.2,,0", "weight", "greater than"),
        ("a,0,kg,33.4,-112.2,,0", "weight", ""),
        ("a,nan,kg,33.4,-112.2,,0", "weight", ""),
        ("a,5000,kg,33.4,-112.2,,0", "weight", ""),
        ("a,1,stone,33.4,-112.2,,0", "weight_unit", ""),
        ("a,1,kg,133.4,-112.2,,0", "dest_lat", ""),
        ("a,1,kg,-112.2,33.4,,0", "dest_lat", "swapped"),
        ("a,1,kg,33.4,-112.2,2026-12-01T17:00:00,0", "deadline", "time zone"),
    ],
)
def test_bad_rows_name_row_and_field(row: str, field: str, words: str) -> None:
    with pytest.raises(InputError) as err:
        parse_packages_csv(HEADER + "ok,1,kg,33.4,-112.2,,0\n" + row + "\n")
    assert err.value.row == 3
    assert err.value.field == field
    assert words.lower() in str(err.value).lower()


def test_empty_file_and_header_only() -> None:
    with pytest.raises(InputError, match="empty"):
        parse_packages_csv("")
    with pytest.raises(InputError, match="no packages"):
        parse_packages_csv(HEADER)


def test_missing_and_unknown_columns() -> None:
    with pytest.raises(InputError) as err:
        parse_packages_csv("key,weight_kg,lat\na,1,33.4\n")
    assert err.value.field == "dest_lon"
    with pytest.raises(InputError) as err:
        parse_packages_csv("key,weight_kg,lat,lon,colour\na,1,33.4,-112.2,red\n")
    assert err.value.field == "colour"
    with pytest.raises(InputError, match="weight"):
        parse_packages_csv("key,lat,lon\na,33.4,-112.2\n")


def test_ragged_row() -> None:
    with pytest.raises(InputError) as err:
        parse_packages_csv("key,weight_kg,lat,lon\na,1,33.4\n")
    assert err.value.row == 2


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_packages_csv(tmp_path / "nope.csv")


def test_the_encoding_rule_is_fixed_and_said() -> None:
    text = "key,weight_kg,lat,lon,recipient\na,1,33.4,-112.2,Zoë Müller\n"
    for data, encoding in (
        (text.encode("utf-8"), "UTF-8"),
        (text.encode("utf-8-sig"), "UTF-8 with BOM"),
        (text.encode("utf-16"), "UTF-16"),
        (text.encode("cp1252"), "Windows-1252"),
    ):
        assert decode_csv(data) == (text, encoding)
    with pytest.raises(InputError) as err:
        decode_csv(text.encode("utf-16-le"))  # no byte-order mark: NUL bytes, not text
    assert err.value.field == "file" and "NUL" in str(err.value)


def test_a_repeated_key_names_the_first_row_as_the_file_numbers_it() -> None:
    with pytest.raises(InputError) as err:
        parse_packages_csv(HEADER + "\n\na,1,kg,33.4,-112.2,,0\na,2,kg,33.4,-112.2,,0\n")
    assert "first on row 4" in str(err.value) and err.value.row == 5


def test_a_past_deadline_is_refused_only_when_a_clock_is_given_and_late_is_not_allowed() -> None:
    text = HEADER + "a,1,kg,33.4,-112.2,2026-12-01T17:00:00Z,0\n"
    now = datetime(2026, 12, 1, 18, tzinfo=UTC)
    assert len(parse_packages_csv(text)) == 1  # no clock: nothing to compare with
    assert len(parse_packages_csv(text, now=now, allow_late=True)) == 1
    with pytest.raises(InputError) as err:
        parse_packages_csv(text, now=now)
    assert err.value.row == 2 and err.value.field == "deadline" and "already past" in str(err.value)
    assert len(parse_packages_csv(text, now=now - timedelta(hours=2))) == 1
