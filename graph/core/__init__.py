"""What every domain module of the schema shares: Relay (global IDs, Node, cursors, connections), errors, the request context, dataloaders, enum descriptions."""
