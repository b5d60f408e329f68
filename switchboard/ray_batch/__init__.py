"""The parallel batch runner: a Ray job that runs a processor class over every member of a job.

`python -m switchboard.ray_batch job.json` is the job's entrypoint (see `runner`); the daemon
side only builds the job's folder and `submit_job` arguments (`submission`) and never imports
Ray or the processor. Nothing in this package is imported by the rest of Switchboard.
"""
