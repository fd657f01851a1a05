"""The parser of every command: options are spelt with hyphens (``--max-iters``, ``--ckpt-num``), and the
underscore spelling of each (``--max_iters``, the authors' ``--ckpt_num`` and ``--video_name``, the legacy
launcher's ``--local_rank=N``) is accepted too without being listed in ``--help``.

Only a token that names one of the parser's own options (alone or as ``--foo_bar=value``) is respelt:
values, ``KEY=value`` config overrides and everything after a bare ``--`` are passed on as given. The
``dest`` of an option is argparse's (``foo_bar`` for ``--foo-bar``), so the parsed names are the same
whichever spelling was typed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


class ArgumentParser(argparse.ArgumentParser):
    """:class:`argparse.ArgumentParser` that also takes ``--foo_bar`` for each of its ``--foo-bar`` options
    (its sub-commands' parsers are of this class too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._respelt = False  # set while an intermixed parse runs: its inner passes get respelt tokens

    def hyphenated(self, args: Sequence[str]) -> list[str]:
        """``args`` with each underscore spelling of one of this parser's options written with hyphens,
        up to a bare ``--``."""
        out = list(args)
        for index, token in enumerate(out):
            if token == "--":
                break
            if not token.startswith("--") or "_" not in token:
                continue
            flag, equals, value = token.partition("=")
            hyphens = flag.replace("_", "-")
            if hyphens in self._option_string_actions:
                out[index] = hyphens + equals + value
        return out

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if not self._respelt:
            args = self.hyphenated(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_known_intermixed_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        args = self.hyphenated(sys.argv[1:] if args is None else args)
        self._respelt = True
        try:
            return super().parse_known_intermixed_args(args, namespace)
        finally:
            self._respelt = False
