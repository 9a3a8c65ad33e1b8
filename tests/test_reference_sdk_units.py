"""The reference SDK's rules on their own (header filter, feedback validation, E-model, SDP
munging, break names), run in Node: no browser, no lab."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

UTIL = Path(__file__).resolve().parents[1] / "harness" / "web" / "sdk" / "rtc-voice-util.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs node (apt-get install nodejs)")


def run(expr: str):
    script = (f"globalThis.window = globalThis; require({json.dumps(str(UTIL))});\n"
              f"const U = RtcVoice.util;\nprocess.stdout.write(JSON.stringify({expr}));")
    out = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_headers_follow_the_seed_faq_rules():
    got = run("""U.filterHeaders({"X-PH-Account": "ab12", "X-PH-Percent": "50%25", "X-PH-A": "1",
      "X-PH-Abcdefghijklmnopqrs": "v", "X-PH-Abcdefghijklmnopqrst": "v", "X-PH-lower": "a", "X-PH-UPPER": "a",
      "X-Other": "a", "x-ph-Account": "a", "X-PH-Space": "a b", "X-PH-Dash": "a-b", "X-PH-Empty": "",
      "X-PH-Max": "a".repeat(48), "X-PH-Long": "a".repeat(49), "X-PH-Num": 42, "X-PH-Obj": {}})""")
    assert got["valid"] == {"X-PH-Account": "ab12", "X-PH-Percent": "50%25", "X-PH-A": "1",
                            "X-PH-Abcdefghijklmnopqrs": "v", "X-PH-Max": "a" * 48, "X-PH-Num": "42"}
    reasons = {d["name"]: d["reason"] for d in got["dropped"]}
    assert set(reasons) == {"X-PH-Abcdefghijklmnopqrst", "X-PH-lower", "X-PH-UPPER", "X-Other", "x-ph-Account",
                            "X-PH-Space", "X-PH-Dash", "X-PH-Empty", "X-PH-Long", "X-PH-Obj"}
    assert reasons["X-PH-Abcdefghijklmnopqrst"] == "name longer than 24 characters"
    assert reasons["X-PH-Long"] == "value longer than 48 characters"


def test_feedback_validation():
    got = run("""[{rating: 5}, {rating: 3, issues: ["echo", "AUDIO_LAG"], note: "n"}, {rating: 4}, {rating: 0, issues: ["ECHO"]},
      {rating: 6}, {rating: 3.5, issues: ["ECHO"]}, {rating: 2, issues: ["NOPE"]}, {rating: 2, issues: "ECHO"},
      {rating: 1, issues: ["ECHO"], note: "x".repeat(281)}].map(U.validateFeedback)""")
    assert [g["ok"] for g in got] == [True, True, False, False, False, False, False, False, False]
    assert got[1]["value"]["issues"] == ["ECHO", "AUDIO_LAG"]
    assert got[2]["errors"] == ["issues are required unless the rating is 5"]
    assert "unknown issues: NOPE" in got[6]["errors"][0]


def test_mos_follows_the_e_model_of_the_field_notes():
    got = run("""[U.mos({rttMs: 2, jitterMs: 1, lossPct: 0, codec: "audio/opus"}),
      U.mos({rttMs: 500, jitterMs: 2, lossPct: 0, codec: "audio/opus"}),
      U.mos({rttMs: 100, jitterMs: 10, lossPct: 5, codec: "audio/PCMU"}), U.mos({rttMs: null})]""")
    assert got[0] == pytest.approx(4.436, abs=0.01)  # Le 14 ms -> R 94.65
    # Le = 500 + 4 + 10 = 514 -> R = 95 - 39.4 = 55.6 -> MOS 2.87: under Plivo's 3.5.
    assert got[1] == pytest.approx(2.87, abs=0.01)
    # Le = 130 -> R = 93.2 - 3.25 - 12.5 = 77.45 -> MOS 3.92
    assert got[2] == pytest.approx(3.924, abs=0.01)
    assert got[3] is None


def test_opus_fmtp_is_set_or_added():
    sdp = "m=audio 9 X 111 0\\r\\na=rtpmap:111 opus/48000/2\\r\\na=fmtp:111 minptime=10;maxaveragebitrate=9\\r\\na=rtpmap:0 PCMU/8000\\r\\n"
    got = run(f'[U.setOpusParam("{sdp}", "maxaveragebitrate", 16000), '
              f'U.setOpusParam("m=audio 9 X 96\\r\\na=rtpmap:96 opus/48000/2\\r\\n", "maxaveragebitrate", 8000)]')
    assert "a=fmtp:111 minptime=10;maxaveragebitrate=16000\r\n" in got[0] and got[0].count("maxaveragebitrate") == 1
    assert got[1].endswith("a=rtpmap:96 opus/48000/2\r\na=fmtp:96 maxaveragebitrate=8000\r\n")


def test_break_names_are_the_documented_ones():
    got = run("[Object.keys(U.BREAKS), [...U.parseBreaks('dtmf, Mute,,nope')]]")
    assert got[0] == ["call", "background", "dtmf", "mute", "headers", "input", "output", "quality", "reconnect", "bitrate", "dscp", "codec",
                      "feedback", "incoming", "unload", "notsupported"]
    assert got[1] == ["dtmf", "mute"]
    doc = (UTIL.parents[1] / "ADAPTER.md").read_text()
    for name in got[0]:
        assert f"`{name}`" in doc, f"break={name} is not documented in ADAPTER.md"
