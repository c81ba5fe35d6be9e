"""Internals of the libraries the API is built on, one module per library: strawberry,
graphql_core, uvicorn (models/fences holds tortoise's). Starlette needs none: only its public API
is used.

Each module says why it needs what it touches (what the public API lacks) and the versions it
was read against; tests/test_fences.py fails, naming the library and the fence, when an upgrade
changes it, and pyproject.toml admits only those versions.
"""
