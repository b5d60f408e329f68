"""The operator surface: one HTTP server for metrics, probes, the status page and the JSON API."""
