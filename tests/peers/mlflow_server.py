"""A real `mlflow server` for the remote-tracking tests, on 127.0.0.1.

Usage: python mlflow_server.py DIR  Starts the server with a SQLite backend and proxied
artifacts under DIR, prints its URL on one line once /health answers, and serves until its
stdin closes (the test process holding the pipe ended); then stops the server's whole
process group, so no worker outlives the tests that started it.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def main() -> None:
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
         "--artifacts-destination", f"{folder}/artifacts"],
        stdout=subprocess.DEVNULL,
        stderr=open(f"{folder}/server.log", "wb"),
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                sys.exit(f"mlflow server exited with {server.returncode}; see {folder}/server.log")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"mlflow server did not answer at {url} within 180 s")
            time.sleep(0.3)
        print(url, flush=True)
        sys.stdin.read()
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    main()
