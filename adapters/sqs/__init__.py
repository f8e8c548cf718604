"""The transport on AWS SQS, over aiobotocore.

Configured by ``SQS_QUEUE_URL`` and ``SQS_DLQ_URL`` (when unset, the dead-letter queue is
found from the queue's RedrivePolicy) and the standard AWS variables: ``AWS_REGION`` or
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_SQS`` for a local endpoint, and the usual
credential chain. The dead-letter queue is SQS's own: the queue's RedrivePolicy
``maxReceiveCount`` moves a message there.

- :mod:`.config`: the settings and the standard AWS variables;
- :mod:`.calls`: every SQS call, each under ``anyio.fail_after``, and the one place where
  botocore's and aiohttp's errors become the ledger's ``TransportError`` family;
- :mod:`.wire`: message attributes and SQS's message shapes;
- :mod:`.transport`: the port's semantics, including delays beyond SQS's 15 minutes and
  redrive without ``StartMessageMoveTask`` (docs/adr/0020-transport-port-local-queue-and-sqs.md).
"""

from adapters.sqs.config import SQS_MAX_DELAY_SECONDS, SqsConfig, region_from_url
from adapters.sqs.transport import SqsTransport

__all__ = ["SQS_MAX_DELAY_SECONDS", "SqsConfig", "SqsTransport", "region_from_url"]
