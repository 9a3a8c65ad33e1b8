"""Where the CLI speaks: one console for results, one for errors, and the one-line failure."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

# CI logs are not terminals: give tables room instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # user text verbatim, never markup
    raise typer.Exit(code)


def need_root() -> None:
    if os.geteuid() != 0:
        fail("the lab needs root: it creates network namespaces and netem qdiscs. "
             "Run it as root (sudo rtcmatrix ...); a rootless mode is not implemented yet.")
