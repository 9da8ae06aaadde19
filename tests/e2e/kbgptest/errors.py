"""Outcomes a test can end with besides passing."""


class TestFailure(Exception):
    """The system under test misbehaved (exit 1)."""


class SkipTest(Exception):
    """The test cannot run here (exit 77)."""


class Interrupted(BaseException):
    """SIGTERM/SIGHUP/watchdog: unwind through every finally, then exit."""
