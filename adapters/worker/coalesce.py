"""Calls that arrive while one is in flight go out together (the jobs of a worker that
finish at the same moment): the first caller sends batches until none is waiting, every
caller gets its own answer. The local queue's deletes do the same
(:meth:`adapters.local_queue.queue.LocalQueue.delete`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """``await submit(item)``: the item's answer from ``send(batch)`` (one per item, in
    order); ``send``'s error is every waiting caller's."""

    def __init__(self, send: Callable[[list[T]], Awaitable[Sequence[R]]], most: int) -> None:
        self._send = send
        self._most = most
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._sending = False

    async def submit(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if not self._sending:
            self._sending = True
            try:
                while self._waiting:
                    batch = self._waiting[:self._most]
                    self._waiting = self._waiting[self._most:]
                    await self._send_batch(batch)
            finally:
                self._sending = False
                stranded, self._waiting = self._waiting, []
                for _, waiting in stranded:
                    if not waiting.done():
                        waiting.set_exception(RuntimeError("the batch was not sent"))
        return await done

    async def _send_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            answers = await self._send([item for item, _ in batch])
        except BaseException as error:
            failure = error if isinstance(error, Exception) else RuntimeError("cancelled")
            for _, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(failure)
            if not isinstance(error, Exception):
                raise
            return
        for (_, waiting), answer in zip(batch, answers, strict=True):
            if not waiting.done():
                waiting.set_result(answer)
