"""Local peers for development and tests: a Twilio Pay simulator and a localstripe runner.

Nothing here is imported by product code.
"""
