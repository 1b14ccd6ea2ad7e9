"""moto server for the test suite, with DynamoDB calls serialised.

moto's DynamoDB backend applies UpdateItem/PutItem as unlocked read-modify-write in a threaded
server, so concurrent conditional writes to one item can lose updates (seen here: 21 of 50
increments admitted against a ceiling of 20). Real DynamoDB applies each conditional write
atomically. Serialising the DynamoDB API (JSON protocol, `X-Amz-Target: DynamoDB_…`) restores
that guarantee; SQS and Secrets Manager stay concurrent so SQS long polls do not block anything.

Usage: python scripts/moto_server.py PORT
"""

import os
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

_dynamodb = threading.Lock()


def serialise_dynamodb(app):
    def wsgi(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _dynamodb:
                # Consume the whole response inside the lock.
                body = list(app(environ, start_response))
            return body
        return app(environ, start_response)

    return wsgi


def main():
    port = int(sys.argv[1])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        "127.0.0.1",
        port,
        serialise_dynamodb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
