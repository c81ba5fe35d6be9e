"""Live delivery to subscribers: the fan-out of a transfer's events, the WebSocket transport and its two GraphQL protocols."""
