"""An S3-compatible server for the datastore tests: moto's, on 127.0.0.1.

Usage: python s3_server.py BUCKET...  Creates the buckets, prints the endpoint URL on one line,
and serves until its stdin closes (the test process holding the pipe ended), so the server
never outlives the tests that started it. moto accepts any credentials.
"""

import socket
import sys

import boto3
from moto.server import ThreadedMotoServer


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    for bucket in sys.argv[1:]:
        s3.create_bucket(Bucket=bucket)
    print(endpoint, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
