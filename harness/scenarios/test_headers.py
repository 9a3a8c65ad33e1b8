"""Custom X-PH- headers: the seed FAQ's rules (field.md): a name is `X-PH-` + a field that starts
with an upper-case letter, the rest lower-case letters or digits, 24 characters at most; a value
holds only A-Z, a-z, 0-9 and %, 48 characters at most; pairs that break a rule are not sent.

Budget: one call placed and hung up (about 1 s of media). The far end keeps the headers exactly as
they arrived with the invite: every valid pair must be there, value for value, and no invalid one.
What the SDK says it dropped (the `calling` event's droppedHeaders) is kept next to it. An SDK
whose adapter declares another rule (`features().headers`, e.g. JsSIP's "X-": any X- header, as
sent) is held to its own rule; X- headers the harness did not send (Plivo's X-Calluuid) are ignored.
"""

import pytest

from harness.scenarios.common import open_for_calls, require_sdk

pytestmark = [pytest.mark.scenario("headers"), pytest.mark.slow, pytest.mark.lab]

VALID = {
    "X-PH-Account": "ab12",
    "X-PH-Percent": "50%25",
    "X-PH-Digits9": "7",
    "X-PH-" + "A" + "b" * 18: "v",            # a 24-character name: the longest allowed
    "X-PH-Long": "Ab1%" * 12,                 # a 48-character value: the longest allowed
}
INVALID = {  # name -> (value, the rule it breaks)
    "X-PH-lower": ("a", "field starts lower-case"),
    "X-PH-UPPER": ("a", "upper-case after the first letter"),
    "X-PH-" + "A" + "b" * 19: ("a", "name of 25 characters"),
    "X-PH-Under_score": ("a", "name has a character other than A-Z, a-z, 0-9"),
    "X-Other": ("a", "not X-PH-"),
    "X-PH-Space": ("a b", "value has a space"),
    "X-PH-Dash": ("a-b", "value has a dash"),
    "X-PH-Toolong": ("a" * 49, "value of 49 characters"),
}


def _expected(rule: str, sent: dict) -> tuple[dict, dict]:
    """(must arrive, must not arrive) under the SDK's rule: Plivo's X-PH- rules, or for an SDK that
    passes every header with its prefix (JsSIP: "X-"), each of them verbatim."""
    if rule == "X-PH-":
        return dict(VALID), {n: r for n, (_, r) in INVALID.items()}
    return ({n: v for n, v in sent.items() if n.upper().startswith(rule.upper())},
            {n: f"not {rule}" for n in sent if not n.upper().startswith(rule.upper())})


def test_headers(cell, softphone, far_end):
    info = open_for_calls(cell, softphone)
    require_sdk(cell, info, "headers", "custom headers on a call")
    rule = info["features"]["headers"]
    softphone.login()
    sent = {**VALID, **{name: value for name, (value, _) in INVALID.items()}}
    must, must_not = _expected(rule, sent)
    call_id = softphone.call(far_end.callee, headers=sent)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    heard = far_end.call(call_id) or {}
    calling = next((e["detail"] for e in softphone.events() if e["type"] == "calling"), {})
    softphone.hangup()
    arrived = heard.get("headers") or {}
    dropped = calling.get("droppedHeaders")
    cell.keep("headers.json", {"sent": sent, "rule": rule, "rules_broken": must_not,
                               "arrived": arrived, "sdk_dropped": dropped, "sdk_sent": calling.get("headers")})
    cell.prove("far-end", "the far end answered this call", bool(heard), call_id=call_id)
    missing = {n: v for n, v in must.items() if arrived.get(n) != v}
    cell.prove("far-end", f"all {len(must)} valid {rule} headers arrived exactly",
               not missing, missing_or_changed={n: arrived.get(n) for n in missing}, arrived=arrived, rule=rule)
    leaked = sorted(n for n in arrived if n in must_not)
    cell.prove("far-end", f"none of the {len(must_not)} invalid headers arrived", not leaked,
               leaked={n: must_not[n] for n in leaked}, arrived=sorted(arrived))
    if dropped is not None:
        names = sorted(d.get("name") for d in dropped)
        cell.prove("page", "the SDK reported exactly the invalid headers as dropped", names == sorted(must_not),
                   dropped={d.get("name"): d.get("reason") for d in dropped})
