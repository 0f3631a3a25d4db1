"""The reference agency: ``python -m reference_doorbell.agency``.

An agency that asks for footage by area instead of knowing any household. It keeps an
Ed25519 key chain, ``publish``-es a signed feed of area requests (docs/feeds.md), and
``serve``-s it over HTTPS with ETags, like any static web server or CDN would. The same
server takes uploads at ``/upload/<entry id>`` and verifies each one: the signature over
the manifest with the key the hub sent along, then every clip.

It never learns who polled (every hub asks the same thing) or who matched: only the
households that approve send anything.

Commands:
  keygen   --keys DIR                         make (or ``--rotate``) the key chain
  publish  --keys DIR --entries FILE --out FEED [--sequence N] [--agency NAME]
  serve    --feed FEED --listen HOST:PORT --cert C --key K --out DIR
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import hashlib
import json
import logging
import os
from pathlib import Path
import ssl
import sys
import tempfile

from aiohttp import web

from .agency_feed import AgencyKeys, build_feed
from .requester_verify import Verdict, keep, verify

_LOGGER = logging.getLogger("reference_agency")

HUB_KEY_HEADER = "Doorstep-Hub-Key"
TAR_TYPE = "application/x-tar"
MAX_UPLOAD = 4 * 1024**3


def etag_of(body: bytes) -> str:
    """A strong ETag that changes exactly when the bytes do."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass
class AgencyLog:
    """What the agency's server saw; for tests and the demo's log."""

    fetches: int = 0
    not_modified: int = 0
    # The raw request head of every feed fetch, as the server parsed it.
    fetch_heads: list[bytes] = field(default_factory=list)
    verdicts: list[tuple[str, Verdict]] = field(default_factory=list)
    received: asyncio.Queue[tuple[str, Verdict]] = field(default_factory=asyncio.Queue)


class AgencyServer:
    """Serve a feed file (re-read when it changes on disk) and receive uploads."""

    def __init__(
        self,
        *,
        feed: Path,
        host: str,
        port: int,
        cert: Path,
        key: Path,
        out_dir: Path,
        path: str = "/feed.json",
        on_fetch: Callable[[bytes], None] | None = None,
    ) -> None:
        self._on_fetch = on_fetch
        self._feed = feed
        self._host = host
        self._port = port
        self._cert = cert
        self._key = key
        self._out_dir = out_dir
        self._path = path
        self._runner: web.AppRunner | None = None
        self.log = AgencyLog()
        self.port = 0

    async def start(self) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._cert, self._key)
        self._out_dir.mkdir(parents=True, exist_ok=True)
        app = web.Application(client_max_size=MAX_UPLOAD)
        app.router.add_get(self._path, self._serve_feed)
        app.router.add_post("/upload/{entry}", self._upload)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_feed(self, request: web.Request) -> web.StreamResponse:
        self.log.fetches += 1
        version = f"HTTP/{request.version.major}.{request.version.minor}"
        head = f"{request.method} {request.raw_path} {version}\r\n".encode()
        head += b"".join(name + b": " + value + b"\r\n" for name, value in request.raw_headers)
        self.log.fetch_heads.append(head)
        if self._on_fetch is not None:
            self._on_fetch(head)
        body = await asyncio.to_thread(self._feed.read_bytes)
        etag = etag_of(body)
        if request.headers.get("If-None-Match") == etag:
            self.log.not_modified += 1
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=body,
            headers={"ETag": etag, "Cache-Control": "public, max-age=300"},
            content_type="application/json",
        )

    async def _upload(self, request: web.Request) -> web.Response:
        entry_id = request.match_info["entry"]
        if request.content_type != TAR_TYPE:
            return web.json_response({"error": "unsupported_media_type"}, status=415)
        try:
            hub_key = base64.b64decode(request.headers.get(HUB_KEY_HEADER, ""), validate=True)
        except binascii.Error, ValueError:
            hub_key = b""
        fd, name = tempfile.mkstemp(prefix=".upload-", suffix=".tar", dir=self._out_dir)
        path = Path(name)
        with os.fdopen(fd, "wb") as handle:
            async for chunk in request.content.iter_chunked(256 * 1024):
                handle.write(chunk)
        if len(hub_key) != 32:
            verdict = Verdict(False, "the upload carries no hub key to check it with")
        else:
            data = await asyncio.to_thread(path.read_bytes)
            verdict = await asyncio.to_thread(verify, data, hub_key)
        kept = await asyncio.to_thread(keep, path, verdict, self._out_dir, f"entry-{entry_id}")
        self.log.verdicts.append((entry_id, verdict))
        self.log.received.put_nowait((entry_id, verdict))
        if verdict.ok:
            _LOGGER.info(
                "agency verified the upload for entry %s: request %s, %d clip(s), "
                "hub key %s, kept at %s",
                entry_id,
                verdict.request_id,
                len(verdict.clips),
                verdict.key_id,
                kept,
            )
            return web.json_response({"verified": True, "request_id": verdict.request_id})
        _LOGGER.warning(
            "agency could not verify the upload for entry %s: %s", entry_id, verdict.reason
        )
        return web.json_response(
            {"error": "verification_failed", "message": verdict.reason}, status=422
        )


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference_doorbell.agency")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    keygen = commands.add_parser("keygen", help="make the key chain, or rotate it")
    keygen.add_argument("--keys", required=True, type=Path)
    keygen.add_argument("--rotate", action="store_true", help="add a key the current one endorses")
    publish = commands.add_parser("publish", help="write a signed feed from a list of entries")
    publish.add_argument("--keys", required=True, type=Path)
    publish.add_argument("--entries", required=True, type=Path, help="JSON list of entries")
    publish.add_argument("--out", required=True, type=Path)
    publish.add_argument("--agency", default="Reference Police Department")
    publish.add_argument("--kind", default="police")
    publish.add_argument("--sequence", type=int, help="default: one more than --out's")
    serve = commands.add_parser("serve", help="serve the feed over HTTPS and receive uploads")
    serve.add_argument("--feed", required=True, type=Path)
    serve.add_argument("--listen", required=True, type=_listen, metavar="HOST:PORT")
    serve.add_argument("--cert", required=True, type=Path)
    serve.add_argument("--key", required=True, type=Path)
    serve.add_argument("--out", required=True, type=Path, help="directory for uploads")
    serve.add_argument(
        "--log-fetches",
        action="store_true",
        help="print every feed request's head (to compare what different hubs send)",
    )
    return parser


def _previous_sequence(feed: Path) -> int:
    try:
        envelope = json.loads(feed.read_bytes())
        payload = json.loads(base64.b64decode(envelope["payload"]))
        return int(payload["sequence"])
    except FileNotFoundError, ValueError, KeyError, TypeError:
        return -1


async def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "keygen":
        if args.rotate:
            keys = AgencyKeys.load(args.keys)
            keys.rotate()
        elif (args.keys / "key-0.pem").exists():
            keys = AgencyKeys.load(args.keys)
        else:
            keys = AgencyKeys.generate()
        keys.save(args.keys)
        print(f"fingerprint {keys.fingerprint()}", flush=True)
        return 0
    if args.command == "publish":
        keys = AgencyKeys.load(args.keys)
        entries = json.loads(args.entries.read_text())
        sequence = args.sequence if args.sequence is not None else _previous_sequence(args.out) + 1
        body = build_feed(
            keys, agency=args.agency, kind=args.kind, entries=entries, sequence=sequence
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_suffix(".partial")
        partial.write_bytes(body)
        partial.replace(args.out)  # a server never serves half a feed
        print(f"published {len(entries)} entries, sequence {sequence}, {len(body)} bytes")
        print(f"fingerprint {keys.fingerprint()}", flush=True)
        return 0
    host, port = args.listen

    def print_fetch(head: bytes) -> None:
        print(f"fetch: {head!r}", flush=True)

    server = AgencyServer(
        feed=args.feed,
        host=host,
        port=port,
        cert=args.cert,
        key=args.key,
        out_dir=args.out,
        on_fetch=print_fetch if args.log_fetches else None,
    )
    bound = await server.start()
    print(f"serving https://{host}:{bound}/feed.json and receiving uploads", flush=True)
    try:
        while True:
            entry_id, verdict = await server.log.received.get()
            status = "VERIFIED" if verdict.ok else "VERIFICATION FAILED"
            print(f"upload for entry {entry_id}: {status}", flush=True)
            for line in verdict.lines():
                print(f"  {line}", flush=True)
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        code = asyncio.run(run(argv))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
