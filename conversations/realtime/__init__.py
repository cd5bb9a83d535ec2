"""The realtime door: the conversation websocket (Channels, served by daphne).

`consumer.py` is the consumer, `protocol.py` the frame rules (limits, close codes, what
a customer may see of an event), `catchup.py` the database reads a connection needs.
The wire protocol is documented in docs/widget.md.
"""
