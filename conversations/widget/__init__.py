"""The widget door: everything a browser talks to for a conversation, in one package.

- `consumer.py`: the conversation websocket `ws/conversations/<id>/` (customers with a
  visitor token; staff with their session, from the console's pages), `routing.py` its
  route; `protocol.py` the frame rules, limits, close codes and the customer view;
  `catchup.py` the database reads a connection needs (who connects, the `ready` state,
  the items after a seq); `socketlimits.py` the open-socket caps; `origins.py` which
  web origins may use the door (and `WebsocketOriginGuard`, the handshake check).
- `views.py` / `urls.py`: `POST /widget/session`, the demo page `/` and the embed guide
  `/widget/docs/`.

The widget itself is `static/widget/` (ES modules behind the `widget.js` loader); the
channel layers the socket listens on are `conversations.channel_layers`. The wire
protocol is documented in docs/widget.md.
"""
