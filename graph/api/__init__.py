"""The GraphQL schema, one module per domain: a new field, type or mutation goes in its domain's module."""
