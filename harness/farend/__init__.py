"""The far end of every call: signalling, an aiortc media peer, and the ground truth it hears."""
