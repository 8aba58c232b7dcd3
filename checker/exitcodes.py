"""Exit codes of the command line, one per outcome."""

from enum import IntEnum


class ExitCode(IntEnum):
    PASS = 0  # every criterion passed
    FAIL = 1  # a criterion failed
    USAGE = 2  # usage or input error (nothing was reported)
    INCONCLUSIVE = 3  # something required could not be evaluated


VERDICT_EXIT = {"pass": ExitCode.PASS, "fail": ExitCode.FAIL, "inconclusive": ExitCode.INCONCLUSIVE}
