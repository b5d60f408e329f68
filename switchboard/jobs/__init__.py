"""Jobs: every submission followed from the outbox to its end, with a timeline of its updates.

- `statuses`: the vocabulary (lowercase statuses, TERMINAL, sources) and the mappings from
  pyclowder / Clowder v2 / Ray words (`extractor_status`, `clowder_job_status`, `ray_status`).
- `store.JobStore`: one transaction per call, for pollers and the CLI: `record(job_id,
  Update)`, `non_terminal(via, limit=, after=)`, `jobs(JobFilter)`, `job`, `timeline`,
  `orphans`, `counts`.
- `switchboard.store.job_records`: the same writes on a caller's connection (intake, relay).
- `tracking`, `status_messages`, `status_intake`, `forwarding`: our status queue, its route
  in the message router, and the relay of each update to Clowder through the outbox.
"""
