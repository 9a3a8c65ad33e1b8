"""A scenario's `far_end` is its cell's backend: rtcmatrix's own far end for the reference SDK, a
SIP stack (Kamailio, rtpengine, a SIP far end) for a SIP SDK. Both answer the same questions."""

import pytest


@pytest.fixture
def far_end(request, cell, reference_far_end, rtcm_matrix):
    sdk = rtcm_matrix.sdks[cell.cell.sdk]
    if sdk.backend == "reference":
        return reference_far_end
    backend = request.getfixturevalue("sip_backends").get(sdk)  # started only if a SIP SDK is in the matrix
    cell.keep("backend.json", backend.describe())
    return backend
