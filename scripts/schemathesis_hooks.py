"""Schemathesis hooks for scripts/test.sh: keep the fuzzer from locking itself out.

The run authenticates with one API key of one test account. The API lets a key revoke, rotate
or delete itself and the admin API suspend or downgrade any account, so a fuzzer that finds the
key's or the account's id (listed by GET /v1/api-keys and GET /v1/admin/accounts) would turn
every later request into a 401/403 and test nothing. Such calls are pointed at an id that does
not exist instead (a 404, which every check accepts); every other key and account stays fair
game, including those the run creates itself.
"""

import os

import schemathesis

PROTECTED = {
    os.environ.get("ORRERY_TEST_KEY_ID", ""),
    os.environ.get("ORRERY_TEST_ACCOUNT_ID", ""),
} - {""}
UNKNOWN = {"key": "key_00000000000000000000000000", "acct": "acct_00000000000000000000000000"}


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.method.upper() == "GET" or not case.path_parameters:
        return
    ident = case.path_parameters.get("id")
    if ident in PROTECTED:
        case.path_parameters["id"] = UNKNOWN["key" if ident.startswith("key_") else "acct"]
