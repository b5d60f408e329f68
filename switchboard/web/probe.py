"""`python -m switchboard.web.probe [healthz|readyz]`: the image's HEALTHCHECK, exit 0 when ok.

Asks this machine's own server (SWITCHBOARD_HTTP_PORT, on 127.0.0.1 whatever address it
binds) so it needs neither curl in the image nor the token (the probes are open).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from ..settings import Settings

TIMEOUT_S = 5.0


def probe(path: str, settings: Settings) -> tuple[bool, str]:
    port = settings.http_port or settings.metrics_port
    if not port:
        return False, "SWITCHBOARD_HTTP_PORT is not set: no server to ask"
    url = f"http://127.0.0.1:{port}/{path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
            return answer.status == 200, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as refused:
        return False, refused.read().decode(errors="replace")
    except OSError as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str]) -> int:
    path = argv[0] if argv else "healthz"
    if path not in ("healthz", "readyz"):
        print("usage: python -m switchboard.web.probe [healthz|readyz]", file=sys.stderr)
        return 2
    ok, said = probe(path, Settings.from_env())
    print(said.strip(), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
