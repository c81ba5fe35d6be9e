"""Live delivery to subscribers: the fan-out of a transfer's events, the WebSocket transport, its two GraphQL protocols, and the encoding of the messages they carry."""
