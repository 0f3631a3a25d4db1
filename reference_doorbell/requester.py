"""The reference requester: ``python -m reference_doorbell.requester``.

A stand-in for a police (or insurer, or neighbour) portal asking a Doorstep hub for
footage. It files a request, polls it, then either fetches the pickup link or receives an
HTTPS upload, and checks the hub's signature and every clip's SHA-256 before saying the
footage is good. It can only ever *ask*: nothing leaves the hub until a person in the
household turns the request's switch on.

Exit codes: 0 success (and for fetch/receive: verified), 1 verification failed,
2 bad usage, 3 the hub refused (400/401/404/413/429/...), 4 network or TLS failure,
5 timed out, 6 the request is closed (declined, expired or revoked: deliberately
indistinguishable).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import sys
import time
from typing import Any

from .requester_client import (
    HubClient,
    HubError,
    HubUnreachable,
    RequesterError,
    RequestStatus,
    UsageError,
    check_request_id,
    client_ssl,
    parse_public_key,
)
from .requester_verify import Verdict

EXIT_OK = 0
EXIT_VERIFY_FAILED = 1
EXIT_USAGE = 2
EXIT_HUB_REFUSED = 3
EXIT_NETWORK = 4
EXIT_TIMEOUT = 5
EXIT_CLOSED = 6

TOKEN_ENV = "DOORSTEP_REQUESTER_TOKEN"  # noqa: S105 (a variable name, not a secret)
DEFAULT_WANTED_DAYS = 7
DEFAULT_MAX_ARCHIVE = 4 * 1024**3


def _time(value: str) -> datetime:
    """argparse type: an ISO 8601 time that says which zone it is in."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 time such as 2026-01-31T18:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a zone, for example a trailing Z")
    return parsed.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    hub = common.add_argument_group("hub")
    hub.add_argument("--hub", metavar="URL", help="Home Assistant's URL, e.g. https://hub:8123")
    hub.add_argument(
        "--token",
        help=f"requester token from the householder (default: ${TOKEN_ENV}, which keeps it "
        "out of the process list). Write --token=VALUE: a token may start with '-'",
    )
    hub.add_argument("--cafile", type=Path, help="CA certificate(s) to trust for the hub's TLS")
    hub.add_argument(
        "--insecure",
        action="store_true",
        help="do not check the hub's TLS certificate (testing only)",
    )
    common.add_argument("--json", action="store_true", help="print results as JSON")

    parser = argparse.ArgumentParser(
        prog="python -m reference_doorbell.requester",
        description="Ask a Doorstep hub for footage, then fetch or receive it and verify it.",
        epilog="Exit codes: 0 ok, 1 verification failed, 2 usage, 3 hub refused, "
        "4 network/TLS, 5 timeout, 6 request closed.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    file = commands.add_parser("file", parents=[common], help="file a request for footage")
    file.add_argument("--reference", required=True, help="your case number")
    file.add_argument("--reason", required=True, help="why you need the footage")
    file.add_argument("--start", required=True, type=_time, help="window start (ISO 8601)")
    file.add_argument("--end", required=True, type=_time, help="window end (ISO 8601)")
    file.add_argument(
        "--doorbell",
        action="append",
        dest="doorbells",
        metavar="ID",
        help="only this doorbell (repeatable; default: all)",
    )
    file.add_argument("--contact", required=True, help="how the householder can reach you")
    file.add_argument(
        "--wanted-by",
        type=_time,
        help=f"when the request lapses (at most 30 days; default {DEFAULT_WANTED_DAYS} days)",
    )
    file.add_argument(
        "--upload-url",
        metavar="URL",
        help="deliver by HTTPS upload to this URL (default: a pickup link)",
    )

    status = commands.add_parser("status", parents=[common], help="show a request's status")
    status.add_argument("id")

    wait = commands.add_parser(
        "wait", parents=[common], help="poll until a request is fulfilled or closed"
    )
    wait.add_argument("id")
    wait.add_argument("--timeout", type=float, default=900.0, help="give up after S seconds")
    wait.add_argument("--interval", type=float, default=2.0, help="first poll interval, s")
    wait.add_argument("--max-interval", type=float, default=30.0, help="longest interval, s")

    fetch = commands.add_parser(
        "fetch", parents=[common], help="download a fulfilled request's pickup link and verify"
    )
    fetch.add_argument("id")
    fetch.add_argument("--out", required=True, type=Path, help="directory for the footage")
    fetch.add_argument(
        "--public-key",
        metavar="BASE64",
        help="the hub's Ed25519 key, obtained out of band (default: ask the hub's /key)",
    )
    fetch.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_ARCHIVE)

    receive = commands.add_parser(
        "receive", parents=[common], help="accept one HTTPS upload from the hub and verify it"
    )
    receive.add_argument("--listen", required=True, type=_listen, metavar="HOST:PORT")
    receive.add_argument("--cert", required=True, type=Path, help="TLS certificate (PEM)")
    receive.add_argument("--key", required=True, type=Path, help="TLS private key (PEM)")
    receive.add_argument("--out", required=True, type=Path, help="directory for the footage")
    receive.add_argument(
        "--public-key",
        metavar="BASE64",
        help="the hub's Ed25519 key (default: ask the hub's /key, needs --hub and a token)",
    )
    receive.add_argument("--expect", metavar="ID", help="refuse an archive for another request")
    receive.add_argument("--timeout", type=float, default=3600.0, help="give up after S s")
    receive.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_ARCHIVE)
    return parser


def _say(line: str) -> None:
    print(line, flush=True)


def _status_lines(status: RequestStatus) -> list[str]:
    lines = [f"{status.id}  {status.status}"]
    if status.status == "pending":
        lines.append("  waiting for a person in the household to decide")
    elif status.status == "closed":
        lines.append("  closed: declined, expired or revoked (the hub does not say which)")
    elif status.pickup_url is not None:
        lines.append(f"  pickup link ready, expires {status.pickup_expires_at}")
    else:
        lines.append("  fulfilled; no pickup link on offer (upload delivery, or link used up)")
    return lines


def _print_status(status: RequestStatus, as_json: bool) -> None:
    if as_json:
        _say(json.dumps({k: v for k, v in asdict(status).items() if v is not None}))
    else:
        for line in _status_lines(status):
            _say(line)


def _report(verdict: Verdict, kept: Path) -> None:
    for line in verdict.lines():
        _say(line)
    _say(f"archive saved as {kept}")
    if verdict.ok:
        _say(f"clips unpacked in {kept.with_suffix('')}/")


def _client(args: argparse.Namespace) -> HubClient:
    if not args.hub:
        raise UsageError("--hub URL is required")
    token = args.token or os.environ.get(TOKEN_ENV)
    if args.insecure:
        print("warning: not checking the hub's TLS certificate", file=sys.stderr, flush=True)
    return HubClient(args.hub, token, ssl_setting=client_ssl(args.cafile, args.insecure))


async def _file(args: argparse.Namespace) -> int:
    wanted_by = args.wanted_by or datetime.now(UTC) + timedelta(days=DEFAULT_WANTED_DAYS)
    body: dict[str, Any] = {
        "reference": args.reference,
        "reason": args.reason,
        "window": {"start": _iso(args.start), "end": _iso(args.end)},
        "contact": args.contact,
        "wanted_by": _iso(wanted_by),
        "delivery": {"method": "upload", "url": args.upload_url}
        if args.upload_url
        else {"method": "pickup"},
    }
    if args.doorbells:
        body["doorbells"] = args.doorbells
    async with _client(args) as client:
        status = await client.file_request(body)
    if args.json:
        _print_status(status, True)
    else:
        _say(f"filed request {status.id} ({status.status})")
        _say(f"nothing is shared until the householder approves; poll with: wait {status.id}")
    return EXIT_OK


async def _status(args: argparse.Namespace) -> int:
    check_request_id(args.id)
    async with _client(args) as client:
        status = await client.status(args.id)
    _print_status(status, args.json)
    return EXIT_CLOSED if status.status == "closed" else EXIT_OK


async def _wait(args: argparse.Namespace) -> int:
    check_request_id(args.id)
    deadline = time.monotonic() + args.timeout
    interval = max(args.interval, 0.0)
    async with _client(args) as client:
        while True:
            try:
                status = await client.status(args.id)
            except HubUnreachable as err:
                # The hub may be restarting; only a refusal or the deadline ends the wait.
                print(f"note: {err}; still waiting", file=sys.stderr, flush=True)
            else:
                if status.status != "pending":
                    _print_status(status, args.json)
                    return EXIT_CLOSED if status.status == "closed" else EXIT_OK
            left = deadline - time.monotonic()
            if left <= 0:
                print(
                    f"error: request {args.id} still pending after {args.timeout:g} s",
                    file=sys.stderr,
                )
                return EXIT_TIMEOUT
            await asyncio.sleep(min(interval, left))
            interval = min(max(interval * 1.5, 0.01), args.max_interval)


async def _fetch(args: argparse.Namespace) -> int:
    from .requester_verify import keep, read_archive, verify

    check_request_id(args.id)
    pinned = parse_public_key(args.public_key) if args.public_key else None
    args.out.mkdir(parents=True, exist_ok=True)
    async with _client(args) as client:
        status = await client.status(args.id)
        if status.status == "closed":
            _print_status(status, False)
            return EXIT_CLOSED
        if status.status == "pending":
            print(f"error: request {args.id} is still pending; run `wait` first", file=sys.stderr)
            return EXIT_HUB_REFUSED
        if status.pickup_url is None:
            print(
                f"error: request {args.id} is fulfilled but offers no pickup link "
                "(it was delivered by upload, or the link expired or was used up)",
                file=sys.stderr,
            )
            return EXIT_HUB_REFUSED
        if pinned is not None:
            public_key = pinned
        else:
            hub_key = await client.public_key()
            public_key = hub_key.public_key
            _say(
                f"using the hub's key {hub_key.key_id}, as {client.base_url} gave it "
                "(compare it with the one the householder sees, or pin it with --public-key)"
            )
        path = await client.download(status.pickup_url, args.out, args.max_bytes)
    verdict = await asyncio.to_thread(verify, read_archive(path), public_key, args.id)
    kept = keep(path, verdict, args.out, args.id)
    _report(verdict, kept)
    return EXIT_OK if verdict.ok else EXIT_VERIFY_FAILED


async def _receive(args: argparse.Namespace) -> int:
    from .requester_receive import ReceiveConfig, UploadReceiver

    if args.expect is not None:
        check_request_id(args.expect)
    if args.public_key:
        public_key = parse_public_key(args.public_key)
    elif args.hub:
        async with _client(args) as client:
            hub_key = await client.public_key()
        public_key = hub_key.public_key
        _say(f"using the hub's key {hub_key.key_id}")
    else:
        raise UsageError("receive needs --public-key, or --hub with a token to ask for it")
    args.out.mkdir(parents=True, exist_ok=True)
    host, port = args.listen
    receiver = UploadReceiver(
        ReceiveConfig(
            host, port, args.cert, args.key, args.out, public_key, args.expect, args.max_bytes
        )
    )
    try:
        bound = await receiver.start()
    except OSError as err:
        print(f"error: cannot listen on {host}:{port}: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        _say(f"listening on https://{host}:{bound}/ for one upload")
        try:
            async with asyncio.timeout(args.timeout):
                received = await receiver.result()
        except TimeoutError:
            print(f"error: no upload arrived within {args.timeout:g} s", file=sys.stderr)
            return EXIT_TIMEOUT
    finally:
        await receiver.stop()
    _report(received.verdict, received.path)
    return EXIT_OK if received.verdict.ok else EXIT_VERIFY_FAILED


COMMANDS = {
    "file": _file,
    "status": _status,
    "wait": _wait,
    "fetch": _fetch,
    "receive": _receive,
}


async def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run one command; returns the exit code (tests call this)."""
    args = build_parser().parse_args(argv)
    try:
        return await COMMANDS[args.command](args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_HUB_REFUSED
    except HubUnreachable as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_NETWORK
    except RequesterError as err:  # e.g. the archive checker cannot be imported
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> None:
    try:
        code = asyncio.run(run(argv))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
