"""How an operation is executed, plugged into strawberry and graphql-core: limits, cached documents, telemetry, text arguments, and the speed-ups of plain fields and shared subscription events."""
