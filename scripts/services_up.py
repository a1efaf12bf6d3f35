"""Exit 0 when the PostgreSQL and Redis named on the command line both answer, else 1 (with the reason)."""

import socket
import sys
from urllib.parse import urlparse


def reachable(url: str) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 0), timeout=1):
            return True
    except OSError as exc:
        print(f"{u.scheme} at {u.hostname}:{u.port} not reachable: {exc}", file=sys.stderr)
        return False


if __name__ == "__main__":
    sys.exit(0 if all([reachable(a) for a in sys.argv[1:]]) else 1)
