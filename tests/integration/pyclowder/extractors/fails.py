"""A real pyclowder 3.0.8 dataset extractor whose process_message fails.

`FAIL_WITH=abort` (the default) raises PyClowderExtractionAbort: pyclowder reports `error` at
once. `FAIL_WITH=exception` raises a RuntimeError: pyclowder reports `retry "(#n) ..."` and
republishes the message to its own queue until its retry limit, then `error`.
"""

import os

from pyclowder.connectors import PyClowderExtractionAbort
from pyclowder.extractors import Extractor
from pyclowder.utils import CheckMessage

FAILURE = "the test extractor failed on purpose"


class Fails(Extractor):
    def check_message(self, connector, host, secret_key, resource, parameters):
        return CheckMessage.bypass

    def process_message(self, connector, host, secret_key, resource, parameters):
        message = f"{FAILURE} for dataset {resource['id']}"
        if os.environ.get("FAIL_WITH", "abort") == "exception":
            raise RuntimeError(message)
        raise PyClowderExtractionAbort(message)


if __name__ == "__main__":
    extractor = Fails()
    extractor.setup()
    extractor.start()
