"""The SDK axis: which adapter drives which SDK, what the page loads for it, and which backend it
needs. A user adds their own SDK in the matrix (`sdks: [{name, adapter, scripts, backend}]`)
without touching the harness; see harness/web/ADAPTER.md."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
Workaround = Literal["strip-telephone-event", "collapse-crcrlf"]
WORKAROUNDS: tuple[str, ...] = get_args(Workaround)


class Sdk(BaseModel):
    """One SDK row group. `scripts` are loaded, in order, before the adapter: the SDK's own build
    as npm ships it (or as `make setup` bundles it), never a copy in this repository."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    adapter: Path
    scripts: tuple[Path, ...] = ()
    backend: Literal["reference", "sip"] = "reference"
    sip_domain: str | None = Field(default=None, description="the registrar's domain the SDK insists on")
    workarounds: tuple[Workaround, ...] = Field(
        default=(), description="backend workarounds for known SDK defects; off unless named")
    page: dict = Field(default={}, description="options on the test page's URL for this SDK's cells")
    description: str = ""

    def missing(self) -> list[Path]:
        """Files the page needs that are not there (an SDK build `make setup` has not made yet)."""
        return [p for p in (self.adapter, *self.scripts) if not p.is_file()]


BUILTIN: dict[str, Sdk] = {
    "reference": Sdk(name="reference", adapter=WEB_ROOT / "adapters" / "reference.js",
                     description="the bundled reference SDK (rtc-voice) against rtcmatrix's own far end"),
    "jssip": Sdk(name="jssip", adapter=WEB_ROOT / "adapters" / "jssip.js", scripts=(WEB_ROOT / "build" / "jssip.js",),
                 backend="sip", description="JsSIP 3.13.8 from npm against Kamailio, rtpengine and a SIP far end"),
    "plivo": Sdk(name="plivo", adapter=WEB_ROOT / "adapters" / "plivo.js",
                 scripts=(WEB_ROOT / "node_modules" / "plivo-browser-sdk" / "dist" / "plivobrowsersdk.js",),
                 backend="sip", sip_domain="phone.plivo.com",
                 description="plivo-browser-sdk 2.2.21 from npm against a SIP stack that answers for phone.plivo.com"),
}
