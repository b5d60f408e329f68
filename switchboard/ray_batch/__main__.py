"""`python -m switchboard.ray_batch [job.json]`: run one batch job (a Ray job's entrypoint)."""

import sys

from .runner import main

sys.exit(main(sys.argv[1:]))
