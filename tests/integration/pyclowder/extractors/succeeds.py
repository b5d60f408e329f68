"""A real pyclowder 3.0.8 dataset extractor that reports progress once and then succeeds.

Run by the test harness with the pyclowder virtualenv's interpreter (pyclowder is not a
Switchboard dependency); `RABBITMQ_URI` and `RABBITMQ_QUEUE` say where it listens.
"""

from pyclowder.extractors import Extractor
from pyclowder.utils import CheckMessage


class Succeeds(Extractor):
    def check_message(self, connector, host, secret_key, resource, parameters):
        return CheckMessage.bypass  # process without downloading the dataset

    def process_message(self, connector, host, secret_key, resource, parameters):
        if resource["type"] == "dataset":
            names = sorted(f["filename"] for f in resource["files"])
            report = f"Looked at {len(names)} files: {', '.join(names)}"
        else:
            report = f"Looked at file {resource['name']}"
        connector.message_process(resource, report)


if __name__ == "__main__":
    extractor = Succeeds()
    extractor.setup()
    extractor.start()
