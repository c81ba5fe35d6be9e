"""The Starlette application: HTTP routes, the GraphQL view, request bodies and heads, refusals, downloads and static assets."""
