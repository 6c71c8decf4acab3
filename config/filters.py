"""Filter types for the API's query parameters that refuse, with a 400, what the database
or the date arithmetic behind them cannot take.

- Date-times: PostgreSQL takes UTC offsets up to ±15:59 ("time zone displacement out
  of range" beyond); ISO 8601 allows up to ±23:59. Larger ones are refused here.
- Dates: a report's last day is turned into the next day's midnight; 9999-12-31 has
  none (OverflowError). Dates are accepted from DATE_MIN to DATE_MAX.
"""

from datetime import date, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)
DATE_MIN = date(1970, 1, 1)
DATE_MAX = date(2999, 12, 31)


def check_date(value: date | None) -> None:
    if value is not None and not DATE_MIN <= value <= DATE_MAX:
        raise ValidationError(f"Enter a date from {DATE_MIN} to {DATE_MAX}.", code="out_of_range")


class BoundedIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        result = super().to_python(value)
        if result is not None and result.utcoffset() is not None and abs(result.utcoffset()) > MAX_UTC_OFFSET:
            raise ValidationError("Enter a UTC offset from -15:59 to +15:59.", code="out_of_range")
        return result


class BoundedDateField(forms.DateField):
    def to_python(self, value):
        result = super().to_python(value)
        check_date(result)
        return result


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


class DateFilter(django_filters.DateFilter):
    field_class = BoundedDateField
