"""A scenario's `far_end` is its cell's backend: rtcmatrix's own far end for the reference SDK, a
SIP stack (Kamailio, rtpengine, a SIP far end) for a SIP SDK. Both answer the same questions.
A SIP cell keeps every SIP message of its time as evidence (`sip-trace`), so a failed call shows
the SDP and the replies that failed it."""

import time

import pytest


@pytest.fixture
def far_end(request, cell, reference_far_end, rtcm_matrix):
    sdk = rtcm_matrix.sdks[cell.cell.sdk]
    if sdk.backend == "reference":
        yield reference_far_end
        return
    with cell.phase("backend"):
        backend = request.getfixturevalue("sip_backends").get(sdk)  # started only if a SIP SDK is in the matrix
    cell.keep("backend.json", backend.describe())
    since = time.time()
    try:
        yield backend
    finally:
        text = backend.trace_text(since)
        if text:
            path = cell.evidence_dir / "sip-trace.txt"
            path.write_text(text)
            cell.keep_file("sip-trace", path)
