"""Verifies one webhook delivery with the official Standard Webhooks library (PyPI
`standardwebhooks`), so the tests check Orrery's signatures against the reference
implementation and not only against our own verifier.

Reads a JSON object from stdin: {"secret": "whsec_…", "headers": {name: value}, "body": "…"}.
Exits 0 if the delivery verifies, 1 (printing why) if it does not.
"""

import json
import sys

from standardwebhooks import Webhook


def main() -> int:
    delivery = json.load(sys.stdin)
    try:
        Webhook(delivery["secret"]).verify(delivery["body"], delivery["headers"])
    except Exception as error:  # the library raises several types; any of them is a failure
        print(f"verification failed: {type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
