"""The widget door over HTTP: the session endpoint the embedded widget starts from, the
demo page that embeds it like a customer's site would, and the embed documentation.
The widget itself is `static/widget/widget.js`; its websocket is `conversations.realtime`."""
