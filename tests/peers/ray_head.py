"""A real Ray head for the compute-target tests, bound to 127.0.0.1.

Usage: python ray_head.py DIR  Starts `ray start --head --block` with its session files under
DIR, the GCS, dashboard and client server on free loopback ports, and 2 CPUs; prints the
dashboard's URL (the Jobs API) and the head's process group on one line once its node is
alive (the dashboard answers seconds before the node registers); serves until its stdin closes (the test
process holding the pipe ended), then stops the head's whole process group. Nothing listens
beyond loopback: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 with --node-ip-address 127.0.0.1.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    dashboard = free_port()
    # The venv's programs first, as on a cluster image: a job's `python` is the cluster's.
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    env = dict(os.environ, PATH=path, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
               RAY_USAGE_STATS_ENABLED="0")
    head = subprocess.Popen(
        [ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(free_port()), "--dashboard-host", "127.0.0.1",
         "--dashboard-port", str(dashboard), "--ray-client-server-port", str(free_port()),
         "--num-cpus", "2",
         "--temp-dir", os.path.join(folder, "ray"), "--disable-usage-stats"],
        stdout=open(os.path.join(folder, "head.log"), "wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if head.poll() is not None:
                sys.exit(f"ray start exited with {head.returncode}; see {folder}/head.log")
            try:
                with urllib.request.urlopen(f"{url}/api/v0/nodes", timeout=2) as answer:
                    nodes = json.load(answer)["data"]["result"]["result"]
                    if any(n.get("state") == "ALIVE" for n in nodes):
                        break
            except (OSError, ValueError, KeyError, TypeError):
                pass
            if time.monotonic() > deadline:
                sys.exit(f"the Ray dashboard did not answer at {url} within 180 s")
            time.sleep(0.3)
        print(url, head.pid, flush=True)
        sys.stdin.read()
    finally:
        try:
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(head.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    main()
