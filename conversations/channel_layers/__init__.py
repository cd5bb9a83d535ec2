"""Channel layers: the infrastructure every websocket and streaming door sends its
events through (configured in `CHANNEL_LAYERS`, support/settings.py).

`memory_layer.py` is embedded mode's in-process layer, `redis_layer.py` and
`pubsub_layer.py` scale mode's Redis layers; both Redis layers tell every grouped
channel of the process when they lose their broker (`LOST_MESSAGE_TYPE`), so no socket
or stream stays open while missing events. They import nothing of the doors.
"""
