"""Backends the browser SDKs talk to inside the lab's server namespace (see `harness.backends.sip`)."""
