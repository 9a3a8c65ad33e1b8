"""Microphone and speaker switching mid-call, on the column's private audio server.

Budget: about 7 s of media: 3 s on mic a / speaker a, the switch, 4 s on mic b / speaker b.
The far end tells the microphones apart by their tones (440 Hz, 880 Hz); the speakers are each
recorded, so where the far end's prompt was played is measured, not read from the page.
"""

import time

import pytest

from harness.audio.analysis import dbfs, read_wav
from harness.scenarios.common import open_for_calls

pytestmark = [pytest.mark.scenario("devices"), pytest.mark.slow, pytest.mark.lab]

BEFORE_S, AFTER_S = 3.0, 4.0
SWITCH_WITHIN_S = 2.0
TONE_TOLERANCE_HZ = 10.0
HEARD_DBFS = -45.0  # a speaker that played the prompt; an idle one records digital silence
MIC_HZ = {"a": 440.0, "b": 880.0}
LIST_WAIT_S = 5.0


def _device(devices: list[dict], kind: str, label: str) -> str | None:
    return next((d["deviceId"] for d in devices if d["kind"] == kind and d["label"] == label), None)


def _share(track: list[dict], hz: float, start: float, end: float) -> tuple[float, int]:
    windows = [w for w in track if start <= w["epoch"] < end and w["hz"] is not None]
    hits = sum(abs(w["hz"] - hz) < TONE_TOLERANCE_HZ for w in windows)
    return (hits / len(windows) if windows else 0.0), len(windows)


def _level(server, speaker: str, start: float, end: float) -> float:
    x, rate = read_wav(server.recording(speaker))
    a, b = (int(max(0.0, server.offset_s(speaker, t)) * rate) for t in (start, end))
    return dbfs(x[a:b]) if b > a else -120.0


def test_devices(cell, softphone, far_end, browsers):
    open_for_calls(cell, softphone)
    server = browsers.audio_server(cell.cell.browser)
    if server is None:
        pytest.skip("this column uses the engine's fake capture (audio: fake); switching needs virtual devices")
    softphone.login()
    # Labels appear once the page holds microphone permission (Firefox: after the SDK's first getUserMedia).
    deadline = time.monotonic() + LIST_WAIT_S
    while True:
        devices = softphone.devices()
        mics = {n: _device(devices, "audioinput", server.mic_label(n)) for n in MIC_HZ}
        if all(mics.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    cell.keep("devices.json", devices)
    speakers = {n: _device(devices, "audiooutput", server.speaker_label(n)) for n in ("a", "b")}
    cell.prove("page", "the browser lists both virtual microphones", all(mics.values()),
               wanted=[server.mic_label(n) for n in MIC_HZ], listed=[d["label"] for d in devices])
    can_route = bool(softphone.capabilities.get("setSinkId")) and all(speakers.values())

    call_id = softphone.call(far_end.callee, input_device=mics["a"])
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    if can_route:
        softphone.page.evaluate("(id) => rtcm.setOutput(id)", speakers["a"])
    start = time.time()
    time.sleep(BEFORE_S)
    switched_at = time.time()
    softphone.page.evaluate("(id) => rtcm.setInput(id)", mics["b"])
    if can_route:
        softphone.page.evaluate("(id) => rtcm.setOutput(id)", speakers["b"])
    time.sleep(AFTER_S)
    end = time.time()
    softphone.hangup()
    track = far_end.frequency(call_id)
    cell.keep("farend-frequency.json", track)

    before, n_before = _share(track, MIC_HZ["a"], start + 0.5, switched_at)
    after, n_after = _share(track, MIC_HZ["b"], switched_at + SWITCH_WITHIN_S, end)
    first_b = next((w["epoch"] for w in track if w["epoch"] >= switched_at and w["hz"] is not None
                    and abs(w["hz"] - MIC_HZ["b"]) < TONE_TOLERANCE_HZ), None)
    took = None if first_b is None else first_b - switched_at
    cell.prove("far-end", "before the switch the far end hears microphone a (440 Hz)", before >= 0.9 and n_before >= 4,
               share=round(before, 2), windows=n_before)
    cell.prove("far-end", f"within {SWITCH_WITHIN_S:g} s of the switch it hears microphone b (880 Hz)",
               took is not None and took <= SWITCH_WITHIN_S and after >= 0.9 and n_after >= 4,
               switch_s=None if took is None else round(took, 2), share_after=round(after, 2), windows=n_after)
    behaviour = f"microphone switched mid-call (the far end heard 440 Hz turn into 880 Hz {took:.1f} s later)"
    if not can_route:
        cell.behaviour = behaviour + "; the speaker cannot be chosen"
        cell.not_supported("browser", "HTMLMediaElement.setSinkId",
                           "this browser cannot choose the speaker (setSinkId is missing); the microphone switch works",
                           capabilities=softphone.capabilities, devices=devices)
    levels = {f"{spk}_{phase}": round(_level(server, spk, *span), 1) for spk in ("a", "b")
              for phase, span in (("before", (start + 0.5, switched_at)), ("after", (switched_at + SWITCH_WITHIN_S, end)))}
    cell.keep("speaker-levels.json", levels)
    for spk in ("a", "b"):
        cell.keep_file(f"speaker-{spk}", server.recording(spk))
    cell.prove("speaker", "the far end's prompt played on speaker a, and not on b, before the switch",
               levels["a_before"] > HEARD_DBFS and levels["b_before"] < HEARD_DBFS - 10, **levels)
    cell.prove("speaker", "after the switch it played on speaker b, and not on a",
               levels["b_after"] > HEARD_DBFS and levels["a_after"] < HEARD_DBFS - 10, **levels)
    cell.behaviour = behaviour + f"; speaker switched (a {levels['a_before']:.0f} -> {levels['a_after']:.0f} dBFS, " \
                                 f"b {levels['b_before']:.0f} -> {levels['b_after']:.0f} dBFS)"
