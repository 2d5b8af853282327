"""boto3's side of the sync benchmark (tests/bench_sync.rs): the same bytes Lathe moves, sent
and fetched with boto3's transfer manager as `aws s3 cp` uses it (10 requests at a time, 8 MiB
parts from 8 MiB), against the same server. Prints the seconds each step took, one JSON line.

Usage: python s3_bench.py ENDPOINT BUCKET PREFIX FILES_LIST LARGE_FILE
FILES_LIST holds one path per line: the small files, each sent as PREFIX/small/<n>.
"""

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config


def main() -> None:
    endpoint, bucket, prefix, listing, large = sys.argv[1:6]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(max_pool_connections=10),
    )
    transfer = TransferConfig(max_concurrency=10)
    with open(listing) as f:
        files = [line.strip() for line in f if line.strip()]
    keys = [f"{prefix}small/{i}" for i in range(len(files))]
    out = {}

    started = time.perf_counter()
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda fk: s3.upload_file(fk[0], bucket, fk[1], Config=transfer), zip(files, keys)))
    out["small_up"] = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as into:
        started = time.perf_counter()
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(lambda ik: s3.download_file(bucket, ik[1], os.path.join(into, str(ik[0]))), enumerate(keys)))
        out["small_down"] = time.perf_counter() - started

    if large and large != "-":
        started = time.perf_counter()
        s3.upload_file(large, bucket, f"{prefix}large", Config=transfer)
        out["large_up"] = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as into:
            started = time.perf_counter()
            s3.download_file(bucket, f"{prefix}large", os.path.join(into, "large"), Config=transfer)
            out["large_down"] = time.perf_counter() - started
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
