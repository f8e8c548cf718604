"""A real SQS endpoint for tests: moto's server mode on 127.0.0.1 (real HTTP, real botocore).

`start_moto()` starts ``ThreadedMotoServer`` on a free port; `create_queues()` creates a
queue and its dead-letter queue joined by a RedrivePolicy, the way a deployment has them.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import uuid4

import anyio
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

from tests.support.moto_patches import serialize_sqs_deletes

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
"""moto accepts any credentials; these keep botocore from looking any further."""


@dataclass(frozen=True)
class SqsQueues:
    endpoint: str
    queue_url: str
    dlq_url: str
    max_receive_count: int


@contextmanager
def start_moto() -> Iterator[str]:
    """Run moto's server on 127.0.0.1 and yield its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    serialize_sqs_deletes()  # moto can drop a message sent during a delete otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def create_queues(
    endpoint: str, *, visibility_timeout: int = 1, max_receive_count: int = 3
) -> SqsQueues:
    """A fresh queue and its dead-letter queue (unique names) on ``endpoint``."""

    async def create() -> SqsQueues:
        name = f"jobs-{uuid4().hex[:12]}"
        session = get_session()
        async with session.create_client(
            "sqs", region_name=REGION, endpoint_url=endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        ) as sqs:
            dlq_url = (await sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
            answer = await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
            policy = {
                "deadLetterTargetArn": answer["Attributes"]["QueueArn"],
                "maxReceiveCount": str(max_receive_count),
            }
            queue_url = (await sqs.create_queue(
                QueueName=name,
                Attributes={
                    "VisibilityTimeout": str(visibility_timeout),
                    "RedrivePolicy": json.dumps(policy),
                },
            ))["QueueUrl"]
        return SqsQueues(endpoint, queue_url, dlq_url, max_receive_count)

    # In a thread of its own: the caller may be inside an event loop (an async fixture).
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, create).result(timeout=30)


@contextmanager
def silent_server() -> Iterator[str]:
    """An endpoint that accepts connections and never answers (for timeout tests)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def closed_port() -> str:
    """An endpoint on which nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def add_queue(queues: SqsQueues, logical: str) -> str:
    """Another queue (for logical queue ``logical``) beside ``queues``, dead-lettering into
    the same dead-letter queue with the same maxReceiveCount; its URL."""

    async def create() -> str:
        session = get_session()
        async with session.create_client(
            "sqs", region_name=REGION, endpoint_url=queues.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        ) as sqs:
            answer = await sqs.get_queue_attributes(
                QueueUrl=queues.dlq_url, AttributeNames=["QueueArn"]
            )
            policy = {
                "deadLetterTargetArn": answer["Attributes"]["QueueArn"],
                "maxReceiveCount": str(queues.max_receive_count),
            }
            name = f"{queues.queue_url.rsplit('/', 1)[-1]}-{logical}"
            created = await sqs.create_queue(
                QueueName=name,
                Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(policy)},
            )
            return created["QueueUrl"]

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, create).result(timeout=30)
