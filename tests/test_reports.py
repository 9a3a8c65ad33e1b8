from reports.html import write_html
from reports.results import CellResult, LinkRecord, Metrics, Proof, RunResult, Status
from reports.summary import markdown


def _run() -> RunResult:
    link = LinkRecord(backend="uml-netem", configured={"uplink": {"delay_ms": 100, "jitter_ms": 0, "loss_pct": 0, "rate_kbit": 330},
                                                        "downlink": {"delay_ms": 100, "jitter_ms": 0, "loss_pct": 0, "rate_kbit": 780},
                                                        "source": "NLC"}, ok=False,
                      deviations=[{"direction": "uplink", "what": "delay_ms_mean", "expected": 100, "measured": 120, "allowed": "±1 ms"}])
    return RunResult(rtcmatrix_version="t", matrix="m.yaml", started_at=0, finished_at=10, lab={"backend": "uml-netem"}, cells=[
        CellResult(id="chromium-3g-outbound-call", browser="chromium", profile="3g", scenario="outbound-call",
                   feature="Make outbound call", status=Status.supported, proven_by=["far-end"],
                   proofs=[Proof(by="far-end", claim="heard", ok=True)], metrics=Metrics(rtt_ms=204, mos=4.1), link=link),
        CellResult(id="chromium-3g-mute", browser="chromium", profile="3g", scenario="mute",
                   feature="Mute and unmute", status=Status.failed, reason="[far-end] silence: not so"),
        CellResult(id="webkit-3g-outbound-call", browser="webkit", profile="3g", scenario="outbound-call",
                   feature="Make outbound call", status=Status.not_supported, lacking="browser: RTCPeerConnection",
                   reason="Not supported: this WebKit build has no WebRTC (RTCPeerConnection is undefined)"),
    ])


def test_html_has_feature_and_performance_tables_and_flags_the_link(tmp_path):
    html = write_html(_run(), tmp_path / "report.html").read_text()
    assert "Make outbound call" in html and "Supported" in html and "Failed" in html
    assert "this WebKit build has no WebRTC (RTCPeerConnection is undefined)" in html
    assert "proven at: far-end" in html
    assert "204" in html  # RTT row
    assert "link not as configured" in html


def test_markdown_summary():
    md = markdown(_run())
    assert "| Make outbound call | Supported (far-end) |" in md
    assert "| Mute and unmute | Failed |" in md
    assert "| Make outbound call | Supported (far-end) | Not supported |" in md
