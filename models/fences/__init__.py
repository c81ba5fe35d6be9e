"""Internals of the libraries models/ is built on, one module per library (graph/fences holds the API's).

Each module says why it needs what it touches and the versions it was read against;
tests/test_fences.py fails, naming the library and the fence, when an upgrade changes it.
"""
