"""Opening a workspace, and a read while another process holds the write lock for 2 s, timed
for two `lathe` binaries side by side (say, before and after a change to the store):

    python3 tests/bench_store.py OLD_LATHE NEW_LATHE [RUNS]

The workspace holds RUNS runs (100,000 by default), written straight into its database."""

import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def timed(binary, workspace, *args):
    start = time.perf_counter()
    done = subprocess.run([binary, "--workspace", workspace, *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{binary} {' '.join(args)} failed: {done.stderr}")
    return elapsed


def main():
    old, new = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    with tempfile.TemporaryDirectory() as scratch:
        workspace = os.path.join(scratch, "ws")
        timed(old, workspace, "data", "list")
        db = sqlite3.connect(os.path.join(workspace, "lathe.db"))
        db.executemany(
            "INSERT INTO runs (uuid, experiment_id, name, user_id, status, start_time_ms,"
            " end_time_ms, lifecycle_stage, artifact_uri)"
            " VALUES (?, 0, ?, 'bench', 'FINISHED', ?, ?, 'active', ?)",
            ((f"{i:032x}", f"run-{i}", i, i + 1, f"mlflow-artifacts:/0/{i:032x}/artifacts")
             for i in range(runs)),
        )
        db.commit()
        db.close()
        for name, binary in (("old", old), ("new", new)):
            median = statistics.median(timed(binary, workspace, "data", "list") for _ in range(5))
            print(f"{name}: open + list assets, {runs} runs: {median * 1000:.0f} ms (median of 5)")
            held = threading.Event()

            def hold():
                other = sqlite3.connect(os.path.join(workspace, "lathe.db"), isolation_level=None)
                other.execute("BEGIN IMMEDIATE")
                held.set()
                time.sleep(2)
                other.execute("ROLLBACK")
                other.close()

            holder = threading.Thread(target=hold)
            holder.start()
            held.wait()
            elapsed = timed(binary, workspace, "data", "list")
            holder.join()
            print(f"{name}: the same while another process holds the write lock for 2 s: "
                  f"{elapsed * 1000:.0f} ms")


if __name__ == "__main__":
    main()
