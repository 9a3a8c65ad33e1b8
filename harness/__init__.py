"""Browsers, the far end, the reference SDK and page, scenarios, metrics, the pytest plugin and the CLI."""
