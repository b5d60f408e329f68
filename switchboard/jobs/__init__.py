"""Jobs: every submission followed from the outbox to its end, with a timeline of its updates."""
