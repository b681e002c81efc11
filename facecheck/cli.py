"""Operator command line for API keys: python -m facecheck.cli --help

Uses the same settings (FACECHECK_DB_PATH, MONGODB_URI, ...) and store as the service.
Exit codes: 0 done, 1 unknown key id, 2 bad settings or store unavailable."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

from facecheck.settings import Settings, SettingsError
from facecheck.store import KeyInfo, Store, StoreUnavailable, open_store

EXIT_UNKNOWN_KEY = 1
EXIT_UNAVAILABLE = 2


def _limit(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'none', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"limit must be >= 0, got {value}")
    return value


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _used_of(used: int, limit: int | None) -> str:
    return f"{used}/{'-' if limit is None else limit}"


def _unknown(key_id: str) -> int:
    print(f"error: no key with id {key_id!r} (see list-keys)", file=sys.stderr)
    return EXIT_UNKNOWN_KEY


def create_key(store: Store, args: argparse.Namespace) -> int:
    info, plaintext = store.create_key(args.name, args.limit)
    if args.json:
        print(json.dumps({"key_id": info.key_id, "name": info.name, "api_key": plaintext}))
        return 0
    limit = "no limit" if info.limit is None else f"limit {info.limit} requests"
    print(f"Created key {info.key_id} ({info.name!r}, {limit}).")
    print("API key, shown only this once; store it now:")
    print(plaintext)
    return 0


def list_keys(store: Store, args: argparse.Namespace) -> int:
    infos = store.list_keys()
    if args.json:
        print(json.dumps([asdict(info) for info in infos], indent=2))
        return 0
    rows = [("ID", "NAME", "CREATED", "STATUS", "USED/LIMIT")]
    rows += [
        (
            info.key_id,
            info.name,
            _when(info.created_at),
            "disabled" if info.disabled else "enabled",
            _used_of(info.used, info.limit),
        )
        for info in infos
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not infos:
        print("(no keys yet: create one with create-key --name NAME)")
    return 0


def _changer(
    change: Callable[[Store, argparse.Namespace], bool], done: str
) -> Callable[[Store, argparse.Namespace], int]:
    def run(store: Store, args: argparse.Namespace) -> int:
        if not change(store, args):
            return _unknown(args.key_id)
        limit = getattr(args, "limit", None)
        print(done.format(key_id=args.key_id, limit="none (unlimited)" if limit is None else limit))
        return 0

    return run


def usage(store: Store, args: argparse.Namespace) -> int:
    info: KeyInfo | None = store.get_key(args.key_id)
    counts = store.usage(args.key_id)
    if info is None or counts is None:
        return _unknown(args.key_id)
    if args.json:
        print(json.dumps({**counts, "name": info.name, "disabled": info.disabled}))
        return 0
    limit = "(no limit)" if counts["limit"] is None else f"of {counts['limit']}"
    outcomes = ", ".join(f"{name}={n}" for name, n in sorted(counts["outcomes"].items()))
    print(f"key id:   {info.key_id} ({info.name!r}, {'disabled' if info.disabled else 'enabled'})")
    print(f"used:     {counts['used']} {limit}")
    print(f"requests: {outcomes or 'none recorded'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m facecheck.cli", description="Manage facecheck API keys and quotas."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, handler: Callable[..., int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    sub = command("create-key", "create a key and print it (once)", create_key)
    sub.add_argument("--name", required=True, help="who or what the key is for")
    sub.add_argument("--limit", type=_limit, default=None, help="request limit (default: none)")
    sub.add_argument("--json", action="store_true", help="print JSON")

    sub = command("list-keys", "list keys (never their secrets)", list_keys)
    sub.add_argument("--json", action="store_true", help="print JSON")

    disable = _changer(lambda s, a: s.set_disabled(a.key_id, True), "Disabled key {key_id}.")
    enable = _changer(lambda s, a: s.set_disabled(a.key_id, False), "Enabled key {key_id}.")
    set_limit = _changer(lambda s, a: s.set_limit(a.key_id, a.limit), "Key {key_id}: limit set to {limit}.")
    reset = _changer(lambda s, a: s.reset_usage(a.key_id), "Key {key_id}: usage reset to 0.")
    command("disable", "refuse requests with this key", disable).add_argument("key_id")
    command("enable", "accept requests with this key again", enable).add_argument("key_id")
    sub = command("set-limit", "set a key's request limit ('none' = unlimited)", set_limit)
    sub.add_argument("key_id")
    sub.add_argument("limit", type=_limit, metavar="N|none")
    command("reset-usage", "set a key's used count back to 0", reset).add_argument("key_id")

    sub = command("usage", "show a key's usage and request outcomes", usage)
    sub.add_argument("key_id")
    sub.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = open_store(Settings.from_env())
    except (SettingsError, StoreUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        return args.handler(store, args)
    except StoreUnavailable as exc:
        print(f"error: the key store is unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
