"""Audio for the harness: virtual devices per browser (pulse) and measurements (analysis)."""
