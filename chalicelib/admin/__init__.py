"""Operator commands (`nt2sync-admin`): the same table as the API, through chalicelib.store.

Each command group is a module with `add_commands(subparsers)`; `cli.GROUPS` lists them.
"""
