"""Schemathesis hooks for the conformance run (tests/test_openapi_conformance.py)."""

import schemathesis


@schemathesis.hook
def filter_body(context, body):
    """Drops bodies that are not UTF-8: cargo-lambda's emulator answers those with its own 500
    before any function runs, where API Gateway would base64-encode them. How the functions
    decode base64 bodies is tested in-process (shared/tests/auth.rs)."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True
