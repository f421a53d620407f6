"""moto's DynamoDB-compatible server, served on one thread.

`moto_server` serves its application threaded, and moto keeps no item locks, so concurrent
conditional writes and ADD updates can interleave. One thread runs each request to completion
before the next, which makes every request atomic, as DynamoDB's are.
"""

import argparse

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    run_simple(
        args.host,
        args.port,
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
