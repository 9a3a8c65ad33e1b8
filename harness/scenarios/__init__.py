"""The scenario catalogue: one feature probe each, written as pytest tests in this folder.

A scenario's name is what matrices and `--scenario` use; its feature is the row label of the
report's feature table.
"""

SCENARIOS: dict[str, str] = {
    "outbound-call": "Make outbound call",
    "page-load": "Page load and network usage",
    "devices": "Microphone and speaker toggling",
    "background": "Move browser to background during ongoing call",
}
