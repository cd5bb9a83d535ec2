"""Websocket tests end every client they opened, as daphne ends every connection.

Without this a consumer the server had closed would still be waiting on its channel
when the test's event loop closes; channels_redis's receive does not always give way to
that final cancellation, and the loop's teardown would hang.
"""

from __future__ import annotations

import pytest

from tests.realtime.wsclient import WsClient


@pytest.fixture(autouse=True)
async def _close_websocket_clients():
    WsClient.opened.clear()
    yield
    while WsClient.opened:
        await WsClient.opened.pop().close()
