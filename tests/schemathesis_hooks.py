"""Schemathesis hooks for the conformance run (tests/test_openapi_conformance.py)."""

import schemathesis


@schemathesis.hook
def filter_body(context, body):
    """Drops bodies that are not UTF-8: cargo-lambda's emulator answers those with its own 500
    before any function runs, where API Gateway would base64-encode them. The functions' answer
    to such a body (400) is tested in-process (shared/tests/handlers/body_encoding.rs) and through `sam
    local invoke` (tests/sam/test_sam_local.py)."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _utf8_on_the_wire(value) -> bool:
    """Whether a header value reaches the server as UTF-8 (requests sends str values as Latin-1)."""
    if not isinstance(value, str):
        return True
    try:
        value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True


@schemathesis.hook
def filter_case(context, case):
    """Drops cases with a header value that is not UTF-8 on the wire (an `Idempotency-Key` of
    `×ø`, say): cargo-lambda's emulator answers those with its own 500 before any function runs,
    where API Gateway passes the header on. That such a key is a 422 is tested in-process
    (shared/tests/handlers/ledger.rs)."""
    return all(_utf8_on_the_wire(value) for value in (case.headers or {}).values())
