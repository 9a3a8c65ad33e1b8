"""What every calling probe starts with: the page, the SDK's own support check, a login."""

from __future__ import annotations

import json
import time
from typing import Callable

from harness.cell import CellRun
from harness.engines import PageTimeout
from harness.softphone import Softphone

NOT_SUPPORTED_WAIT_S = 5.0
ENGINE_LABELS = {"chromium": "Chromium", "firefox": "Firefox", "webkit": "WebKit"}


def open_for_calls(cell: CellRun, phone: Softphone, adapter: str | None = None, **query: str) -> dict:
    """Open the page; where the engine has no WebRTC, end the cell as not-supported, with the
    SDK's own detection event as evidence (a silent SDK there is a failure of its detection)."""
    for key, value in cell.options.page.items():  # the matrix's SDK options; the probe's own win
        query.setdefault(key, value if isinstance(value, str) else json.dumps(value))
    adapter = adapter or cell.cell.sdk
    if cell.options.break_ and adapter == "reference":
        query.setdefault("break", cell.options.break_)
    info = phone.open(adapter, **query)
    cell.keep("adapter.json", {**info, "capabilities": phone.capabilities})
    if phone.capabilities.get("RTCPeerConnection"):
        return info
    event = sdk_not_supported_event(phone)
    cell.prove("page", "the SDK reports that this browser cannot call",
               info.get("supported") is False and event is not None,
               isSupported=info.get("supported"), webrtcNotSupported=event)
    label = ENGINE_LABELS.get(cell.engine, cell.engine)
    cell.not_supported("browser", "RTCPeerConnection", f"this {label} build has no WebRTC (RTCPeerConnection is undefined)",
                       capabilities=phone.capabilities, event=event)
    return info


def sdk_not_supported_event(phone: Softphone) -> dict | None:
    """The SDK's webrtcNotSupported event, provoked the way an app meets it: by trying to log in."""
    try:
        phone.page.evaluate("() => rtcm.login({server: 'ws://invalid.invalid/', username: 'probe', password: 'x'})"
                            ".catch(() => null)")
    except Exception:  # noqa: BLE001 - whatever login does here, the event is what counts
        pass
    try:
        return phone.page.wait_for("() => rtcm.events.find(e => e.type === 'webrtcNotSupported') || null",
                                   timeout_s=NOT_SUPPORTED_WAIT_S)
    except PageTimeout:
        return None


def require_sdk(cell: CellRun, info: dict, feature: str, missing: str) -> None:
    """End the cell as not-supported *by the SDK* when its adapter's features() says it lacks
    `feature` (a falsy or absent entry); distinct from what the browser lacks."""
    features = info.get("features") or {}
    if not features.get(feature):
        cell.not_supported("sdk", missing, f"the SDK adapter {info.get('name')!r} does not offer {missing}",
                           features=features)


def require_browser(cell: CellRun, phone: Softphone, capability: str, missing: str, why: str) -> None:
    """End the cell as not-supported *by this browser* when the page lacks `capability`."""
    if not phone.capabilities.get(capability):
        cell.not_supported("browser", missing, why, capabilities=phone.capabilities)


def far_end_wait(far_end, call_id: str, done: Callable[[dict], bool], timeout_s: float = 3.0) -> dict:
    """The far end's summary of the call once `done(summary)` holds, or as it stands after
    `timeout_s`: what the page did a moment ago is still crossing the link (one way on 3G is over
    100 ms), and the far end's audio arrives after the call connects."""
    deadline = time.monotonic() + timeout_s
    while True:
        summary = far_end.call(call_id) or {}
        if done(summary) or time.monotonic() > deadline:
            return summary
        time.sleep(0.05)


def recorded(event: str) -> Callable[[dict], bool]:
    """For far_end_wait: the far end has a timestamp for `event`."""
    return lambda summary: event in (summary.get("timestamps") or {})


def far_end_saw(far_end, call_id: str, event: str, timeout_s: float = 3.0) -> float | None:
    """When the far end recorded `event` for the call, waiting for it (far_end_wait)."""
    return (far_end_wait(far_end, call_id, recorded(event), timeout_s).get("timestamps") or {}).get(event)
