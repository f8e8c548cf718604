"""Job messages in SQS's shapes: typed message attributes, received messages, dead letters."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from ledger.errors import MalformedMessage
from ledger.ports.transport import ATTR_ATTEMPT, DeadLetter, JobMessage, decode_message

if TYPE_CHECKING:
    from types_aiobotocore_sqs.type_defs import MessageAttributeValueTypeDef, MessageTypeDef

log = logging.getLogger(__name__)

ATTR_NOT_BEFORE: Final = "not_before"
"""Epoch seconds before which a long-delayed message must not be handed to a worker."""
_NUMBERS: Final = frozenset({ATTR_ATTEMPT, ATTR_NOT_BEFORE})


def attributes_for(message: JobMessage, not_before: float | None = None) -> dict[
    str, MessageAttributeValueTypeDef
]:
    """The typed message attributes of ``message`` (and its ``not_before``, if any)."""
    values = dict(message.attributes)
    if not_before is not None:
        values[ATTR_NOT_BEFORE] = f"{not_before:.3f}"
    return {
        name: {"DataType": "Number" if name in _NUMBERS else "String", "StringValue": value}
        for name, value in values.items()
    }


def attribute_values(raw: MessageTypeDef) -> dict[str, str]:
    """The message attributes of a received message as plain strings."""
    return {
        name: value.get("StringValue", "")
        for name, value in raw.get("MessageAttributes", {}).items()
    }


def receive_count(raw: MessageTypeDef) -> int:
    return int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


def sent_at(raw: MessageTypeDef) -> datetime:
    millis = int(raw.get("Attributes", {}).get("SentTimestamp", "0"))
    return datetime.fromtimestamp(millis / 1000, UTC)


def decoded(raw: MessageTypeDef) -> tuple[JobMessage, dict[str, str], float | None] | None:
    """The job message, its attributes and its ``not_before``; ``None`` (logged) when the
    message is not a job message."""
    attributes = attribute_values(raw)
    not_before = attributes.pop(ATTR_NOT_BEFORE, None)
    try:
        message = decode_message(raw.get("Body", ""), attributes)
        due = float(not_before) if not_before is not None else None
    except (MalformedMessage, ValueError) as error:
        log.warning("SQS: message %s is not a job message: %s", raw.get("MessageId"), error)
        return None
    return message, attributes, due


def dead_letter(raw: MessageTypeDef, max_receives: int | None = None) -> DeadLetter:
    attributes = attribute_values(raw)
    attributes.pop(ATTR_NOT_BEFORE, None)
    body = raw.get("Body", "")
    try:
        message: JobMessage | None = decode_message(body, attributes)
    except MalformedMessage:
        message = None
    return DeadLetter(
        message_id=raw["MessageId"],
        receive_count=receive_count(raw),
        max_receives=max_receives,
        body=body,
        message=message,
        receipt=raw["ReceiptHandle"],
        sent_at=sent_at(raw),
        attributes=attributes,
    )

