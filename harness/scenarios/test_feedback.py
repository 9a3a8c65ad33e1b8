"""Call quality feedback (Plivo's sendQualityFeedback): rating an integer 1-5; issues required unless
the rating is 5, each one of Plivo's list (field.md); an optional note.

Budget: one short call (about 1 s of media), then feedback on it, the way an app sends it after
hanging up. Valid feedback must be stored at the far end exactly as given (rating, issues, note);
invalid feedback must be refused by the SDK with a reason and never reach the far end.
"""

import time

import pytest

from harness.scenarios.common import open_for_calls, require_sdk

pytestmark = [pytest.mark.scenario("feedback"), pytest.mark.slow, pytest.mark.lab]

VALID = [
    {"rating": 3, "issues": ["ECHO", "AUDIO_LAG"], "note": "a bit of echo"},
    {"rating": 5},  # no issues needed for a perfect call
    {"rating": 1, "issues": ["DIGITS_NOT_CAPTURED"]},
]
INVALID = [  # (input, the rule it breaks)
    ({"rating": 0, "issues": ["ECHO"]}, "rating 0"),
    ({"rating": 6, "issues": ["ECHO"]}, "rating 6"),
    ({"rating": 4}, "issues missing with a rating below 5"),
    ({"rating": 2, "issues": ["NO_SUCH_ISSUE"]}, "an unknown issue"),
]
SETTLE_S = 0.3  # the far end acknowledges valid feedback; give a wrongly sent one time to land too


def _stored(entry: dict) -> tuple:
    return entry.get("rating"), list(entry.get("issues") or []), entry.get("note") or ""


def test_feedback(cell, softphone, far_end):
    info = open_for_calls(cell, softphone)
    require_sdk(cell, info, "feedback", "feedback()")
    softphone.login()
    call_id = softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    softphone.hangup()
    results = [softphone.page.evaluate("(f) => rtcm.feedback(f)", {**f, "callId": call_id})
               for f in VALID + [i for i, _ in INVALID]]
    time.sleep(SETTLE_S)
    stored = far_end.feedback(call_id)
    cell.keep("feedback.json", {"valid": VALID, "invalid": INVALID, "sdk_results": results, "far_end": stored})
    good, bad = results[:len(VALID)], results[len(VALID):]

    want = [_stored(f) for f in VALID]
    got = [_stored(s) for s in stored]
    leaked = [g for g in got if g not in want]
    cell.prove("far-end", "no invalid feedback reached the far end", not leaked,
               leaked=leaked, rules_broken=[why for _, why in INVALID])
    cell.prove("far-end", f"all {len(VALID)} valid feedback entries are stored at the far end, as given",
               got == want, stored=got, expected=want)
    cell.prove("page", "the SDK accepted the valid feedback", all(r and r.get("ok") for r in good), results=good)
    refused = {why: (r or {}).get("errors") for (_, why), r in zip(INVALID, bad)}
    cell.prove("page", "the SDK refused each invalid feedback with a reason",
               all(r and r.get("ok") is False and r.get("errors") for r in bad), refused=refused)
