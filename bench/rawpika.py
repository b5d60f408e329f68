"""The raw pika ceiling: consume, publish one message to another queue, ack; nothing else.

No rules, no database. Two modes, matching the two ways our extractor-queue sink publishes:
`confirm` waits for the broker's confirm of each message before acking its delivery (like
`ExtractorQueueSink.send`); `batch` gathers up to `--batch-size` deliveries the way the
daemon's source does, publishes them in one AMQP transaction (like `send_many`) and acks them
with one `multiple` ack. Both publish `mandatory` and persistent, and ack only after the broker
has the copy. Started by `bench/pipeline.py` as a subprocess; runs until SIGTERM.

Run: python bench/rawpika.py --input Q --output Q2 [--mode batch] [--prefetch 256]
"""

from __future__ import annotations

import argparse
import collections
import signal
import time

import pika

PERSISTENT = pika.BasicProperties(content_type="application/json", delivery_mode=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="amqp://guest:guest@127.0.0.1:5672/%2f")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--mode", choices=("confirm", "batch"), default="batch")
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--batch-wait-s", type=float, default=0.05)
    args = parser.parse_args()

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    connection = pika.BlockingConnection(pika.URLParameters(args.uri))
    consume = connection.channel()
    consume.basic_qos(prefetch_count=args.prefetch)
    publish = connection.channel()
    if args.mode == "confirm":
        publish.confirm_delivery()
    else:
        publish.tx_select()
    pending: collections.deque = collections.deque()
    consume.basic_consume(args.input, lambda _c, m, p, b: pending.append((m.delivery_tag, b)))
    try:
        while not stopping:
            batch = _gather(connection, pending, args.batch_size, args.batch_wait_s)
            if not batch:
                continue
            if args.mode == "confirm":
                for tag, body in batch:
                    publish.basic_publish("", args.output, body, PERSISTENT, mandatory=True)
                    consume.basic_ack(tag)
            else:
                for _tag, body in batch:
                    publish.basic_publish("", args.output, body, PERSISTENT, mandatory=True)
                publish.tx_commit()
                consume.basic_ack(batch[-1][0], multiple=True)
    finally:
        connection.close()


def _gather(
    connection: pika.BlockingConnection,
    pending: collections.deque,
    max_size: int,
    max_wait_s: float,
) -> list:
    """Up to `max_size` deliveries, closing `max_wait_s` after the first (as RabbitSource)."""
    if not pending:
        connection.process_data_events(time_limit=0.2)
        if not pending:
            return []
    deadline = time.monotonic() + max_wait_s
    while len(pending) < max_size:
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            break
        connection.process_data_events(time_limit=remaining_s)
    return [pending.popleft() for _ in range(min(max_size, len(pending)))]


if __name__ == "__main__":
    main()
