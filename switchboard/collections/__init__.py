"""Collections: YAML `collect:` specs, firing, manifests, the quiet-period sweeper and reports."""
