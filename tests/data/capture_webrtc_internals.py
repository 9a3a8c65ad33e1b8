"""Make tests/data/webrtc-internals-ramp.json.gz: a real Chromium webrtc-internals dump of a call
through the lab under a known schedule, so the replay importer is tested against real data
whose ground truth is known.

    sudo .venv/bin/python tests/data/capture_webrtc_internals.py

Schedule (one way, both directions): 40 ms for 6 s, 90 ms for 6 s, 140 ms with 4 % loss for 6 s.
"""

from pathlib import Path

from harness.engines import BrowserSpec, LaunchContext, engine
from harness.engines.driver import start_in_netns
from harness.engines.playwright_page import PlaywrightPage
from harness.farend import audio
from harness.farend.handle import FarEnd
from harness.softphone import Softphone
from impairments.lab import Lab
from impairments.schedule import Schedule, ScheduleRunner

SCHEDULE = Schedule(name="capture", steps=[
    {"duration_s": 6, "profile": {"both": {"delay_ms": 40}}},
    {"duration_s": 6, "profile": {"both": {"delay_ms": 90}}},
    {"duration_s": 6, "profile": {"both": {"delay_ms": 140, "loss_pct": 4}}},
])
OUT = Path(__file__).with_name("webrtc-internals-ramp.json.gz")


def main() -> None:
    work = Path("/tmp/rtcmatrix-capture")
    work.mkdir(exist_ok=True)
    with Lab() as lab:
        lab.apply(SCHEDULE.first)
        fe = FarEnd(lab, work).start()
        try:
            pw = start_in_netns(lab.client_ns, work)
            try:
                ctx = LaunchContext(lab.client_ns, fe.url, work, audio.tone(work / "mic.wav"), exclude_host=lab.server_ip)
                browser = engine("chromium").launch(pw, ctx, BrowserSpec("chromium", "chromium", audio="fake"), {})
                context = browser.browser.new_context(accept_downloads=True)
                internals = context.new_page()
                internals.goto("chrome://webrtc-internals")
                phone = Softphone(PlaywrightPage(context, browser.driver), fe)
                phone.open()
                phone.login()
                phone.call()
                phone.wait_for("connected")
                runner = ScheduleRunner(lab, SCHEDULE).start()
                runner.join()
                internals.bring_to_front()
                internals.click("text=Create a WebRTC-Internals dump")
                with internals.expect_download() as download:
                    internals.locator("button", has_text="Download").first.click()
                download.value.save_as(OUT)
                browser.close()
            finally:
                pw.stop()
        finally:
            fe.stop()
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); steps applied at {[round(r.applied_s, 3) for r in runner.records]}")


if __name__ == "__main__":
    main()
