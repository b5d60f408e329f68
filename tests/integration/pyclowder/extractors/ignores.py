"""A real pyclowder 3.0.8 dataset extractor whose check_message ignores every message.

pyclowder then reports `skip` and `done` without calling process_message.
"""

from pyclowder.extractors import Extractor
from pyclowder.utils import CheckMessage


class Ignores(Extractor):
    def check_message(self, connector, host, secret_key, resource, parameters):
        return CheckMessage.ignore

    def process_message(self, connector, host, secret_key, resource, parameters):
        raise AssertionError("pyclowder called process_message for an ignored message")


if __name__ == "__main__":
    extractor = Ignores()
    extractor.setup()
    extractor.start()
