"""moto's DynamoDB-compatible server, served on one thread.

`moto_server` serves its application threaded, and moto keeps no item locks, so concurrent
conditional writes and ADD updates can interleave. One thread runs each request to completion
before the next, which makes every request atomic, as DynamoDB's are.

moto rolls a cancelled transaction back from a deep copy of the whole table, taken once per item
of every TransactWriteItems, so each transaction takes time in proportion to the table (about
1 s for four items at 3,000 items). The server here backs up only the items a transaction names.
"""

import argparse
import copy

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

_moto_transact_write_items = DynamoDBBackend.transact_write_items


class _TablesNotCopied:
    """The `copy` module as moto's DynamoDB backend sees it, except that a deep copy of a table
    is the table itself: its transactions' whole-table backups cost nothing."""

    copy = staticmethod(copy.copy)

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict]) -> None:
    """moto's TransactWriteItems, rolled back by restoring only the items it names."""
    originals = []
    for entry in transact_items:
        for operation in entry.values():
            table = self.tables.get(operation.get("TableName"))
            try:
                key = operation.get("Key") or {
                    name: operation["Item"][name]
                    for name in (table.hash_key_attr, table.range_key_attr)
                    if name
                }
                hash_value, range_value = self.get_keys_value(table, key)
                item = table.get_item(hash_value, range_value)
            except Exception:  # a malformed entry, which moto refuses without writing it
                continue
            originals.append((table, hash_value, range_value, copy.deepcopy(item)))
    try:
        _moto_transact_write_items(self, transact_items)
    except Exception:
        # In reverse, so that an item named twice ends as it was before the first.
        for table, hash_value, range_value, item in reversed(originals):
            if item is None:
                table.delete_item(hash_value, range_value)
            elif range_value is None:
                table.items[hash_value] = item
            else:
                table.items[hash_value][range_value] = item
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    dynamodb_models.copy = _TablesNotCopied
    DynamoDBBackend.transact_write_items = _transact_write_items
    run_simple(
        args.host,
        args.port,
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
