"""The parallel batch runner: a Ray job that runs a processor class over every member of a job.

`python -m switchboard.ray_batch job.json` is the job's entrypoint (see `runner`); the Ray sink
ships this package in the job's working_dir as `switchboard_ray_batch`, so it imports nothing
of Switchboard outside itself (the standard library, Ray and pika only). The daemon side only
builds the job's folder and `submit_job` arguments (`submission`) and checks the rule options
(`options`); it never imports Ray or the processor.
"""
