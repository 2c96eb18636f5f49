"""The argument parser of every command: argparse, plus the checks every flag needs.

* NaN and infinite floats are refused (``--rec_thresh nan`` would silently call every face "unknown"),
  and so are negative whole numbers, naming the flag: one line, exit 2 (through ``run_cli``).
* ``--debug`` is listed in every ``--help``: with it, any error also prints its traceback.
"""
from __future__ import annotations

import argparse
import os

from arcface_paddle.core.errors import DEBUG_ENV, DEBUG_FLAG
from arcface_paddle.core.finite_numbers import check_flag_numbers


class _DebugAction(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ[DEBUG_ENV] = "1"
        setattr(namespace, self.dest, True)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose parsed numbers are checked (see the module doc)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument(DEBUG_FLAG, action=_DebugAction, help="on an error, also print its traceback")

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        flags = {action.dest: max(action.option_strings, key=len) for action in self._actions if action.option_strings}
        check_flag_numbers(parsed, flags)
        return parsed
