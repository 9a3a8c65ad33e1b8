"""Where the CLI speaks: one console for results, one for errors, and the one-line failure."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.text import Text

# CI logs are not terminals: give tables room instead of rich's 80-column default. What is printed
# quotes user text (names, paths, YAML, dumps), so neither console reads markup, emoji codes or
# highlights: styling is given explicitly (`style=`, `Text`), never parsed out of a string.
VERBATIM = {"markup": False, "emoji": False, "highlight": False}
console = Console(width=None if sys.stdout.isatty() else 160, **VERBATIM)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160, **VERBATIM)


def fail(message: str, code: int = 2) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", message))
    raise typer.Exit(code)


def need_root() -> None:
    if os.geteuid() != 0:
        fail("the lab needs root: it creates network namespaces and netem qdiscs. "
             "Run it as root (sudo rtcmatrix ...); a rootless mode is not implemented yet.")
