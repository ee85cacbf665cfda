"""The first bytes of a message over the size limit, kept by the session's connection for
its dead letter, over a real loopback WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ingester.upstream.session import _MAX_MESSAGE_BYTES, _TrackedConnection
from tests.simulator.helpers import wait_for

_HEAD = b'{"op":"snapshot","match_id":41000,"data":{"padding":"'
_MIB = 1024 * 1024


async def _oversized_head(
    fragments: list[bytes], apart: bool = False, compression: str | None = None
) -> bytes:
    """What the client kept of ``fragments``, sent as one text message over 4 MiB; when
    ``apart``, the rest only once the client has taken in the first fragment."""
    client: list[_TrackedConnection] = []

    async def first_then_rest() -> AsyncIterator[str]:
        yield fragments[0].decode()
        if apart:
            await wait_for(
                lambda: bool(client) and client[0]._first_fragment is not None,
                "the first fragment read",
            )
        for fragment in fragments[1:]:
            yield fragment.decode()

    async def handler(server: ServerConnection) -> None:
        await server.send(first_then_rest())
        await server.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=compression, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(
            f"ws://127.0.0.1:{port}",
            create_connection=_TrackedConnection,
            max_size=_MAX_MESSAGE_BYTES,
            compression=compression,
        ) as websocket:
            assert isinstance(websocket, _TrackedConnection)
            client.append(websocket)
            with pytest.raises(ConnectionClosed):
                await websocket.recv(decode=False)
            assert websocket.oversized is not None
            return websocket.oversized[0]


async def test_the_head_of_a_message_in_one_frame_is_its_start() -> None:
    head = await _oversized_head([_HEAD + b"x" * (5 * _MIB) + b'"}}'])
    assert head.startswith(_HEAD)


@pytest.mark.parametrize("apart", [False, True], ids=["in-one-read", "apart"])
async def test_the_head_of_a_fragmented_message_is_its_start_not_the_fragment_over_the_limit(
    apart: bool,
) -> None:
    """Fragments of 3 MiB, then 2 MiB: the limit is crossed in the second one, whose
    bytes are no message's start (no ``match_id``); the head is the first fragment's."""
    fragments = [_HEAD + b"x" * (3 * _MIB), b"x" * (2 * _MIB), b'"}}']
    head = await _oversized_head(fragments, apart)
    assert head.startswith(_HEAD)


async def test_nothing_is_kept_of_a_compressed_message_in_one_frame() -> None:
    """The limitation the guarantees state: the limit is met while inflating, when the
    frame's bytes are gone."""
    head = await _oversized_head([_HEAD + b"x" * (5 * _MIB) + b'"}}'], compression="deflate")
    assert head == b""
