"""Browser engines and their launch recipes.

Every browser runs inside the lab's client namespace: Playwright starts a small wrapper that
enters the namespace and execs the real binary, so the lab link is the browser's only route.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from playwright.sync_api import Browser, Playwright


class BrowserMissing(RuntimeError):
    """The engine's binary is not installed; the message says which package brings it."""


@dataclass(frozen=True)
class LaunchContext:
    """What a recipe needs to know about the lab it launches into."""

    netns: str
    page_origin: str
    workdir: Path
    mic_wav: Path


@dataclass(frozen=True)
class Engine:
    name: str
    playwright_type: str
    binaries: tuple[str, ...]
    package: str
    recipe: Callable[["Engine", LaunchContext], dict]

    def binary(self) -> str:
        for candidate in self.binaries:
            found = shutil.which(candidate)
            if found:
                return found
        raise BrowserMissing(f"browser {self.name!r}: none of {', '.join(self.binaries)} is installed; "
                             f"install it with `apt-get install {self.package}` (or `make setup`)")

    def version(self) -> str:
        out = subprocess.run([self.binary(), "--version"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or out.stderr.strip()

    def wrapper(self, ctx: LaunchContext) -> Path:
        """An executable that puts the browser inside the client namespace."""
        path = ctx.workdir / f"{self.name}-in-lab"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {ctx.netns} {self.binary()} "$@"\n')
        path.chmod(0o755)
        return path

    def launch_args(self, ctx: LaunchContext) -> dict:
        return self.recipe(self, ctx)

    def launch(self, playwright: Playwright, ctx: LaunchContext, overrides: dict | None = None) -> Browser:
        kwargs = {**self.launch_args(ctx), **(overrides or {})}
        return getattr(playwright, self.playwright_type).launch(**kwargs)


def _chromium(engine: Engine, ctx: LaunchContext) -> dict:
    return {
        "executable_path": str(engine.wrapper(ctx)),
        "headless": True,
        "args": [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={ctx.mic_wav}",
            "--autoplay-policy=no-user-gesture-required",
            f"--unsafely-treat-insecure-origin-as-secure={ctx.page_origin}",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    }


ENGINES: dict[str, Engine] = {
    "chromium": Engine(
        name="chromium",
        playwright_type="chromium",
        binaries=("chromium", "chromium-browser"),
        package="chromium",
        recipe=_chromium,
    ),
}


def engine(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise BrowserMissing(f"unknown browser {name!r}; known: {', '.join(ENGINES)}") from None
