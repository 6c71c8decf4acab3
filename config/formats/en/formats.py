"""Date and time formats for English (FORMAT_MODULE_PATH): ISO dates and times with
seconds and the zone, so that a payment's callbacks can be told apart and read in order."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s T"
TIME_FORMAT = "H:i:s"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
