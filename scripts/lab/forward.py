"""A tiny TCP forwarder, so http://127.0.0.1:8123 in the root namespace reaches Home
Assistant inside the hub namespace (browsers treat 127.0.0.1 as a secure context)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib


class TcpForwarder:
    """Accepts on (listen_host, listen_port) and pipes each connection to the target."""

    def __init__(
        self,
        listen_host: str,
        listen_port: int,
        target_host: str,
        target_port: int,
        *,
        source_host: str | None = None,
    ) -> None:
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.target_host = target_host
        self.target_port = target_port
        # The address each onward connection comes from (None: the system's choice).
        self.source_host = source_host
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start listening; raises OSError when the port is taken."""
        self._server = await asyncio.start_server(
            self._handle, self.listen_host, self.listen_port, reuse_address=True
        )

    @property
    def bound_port(self) -> int:
        """The port it listens on: the one the system picked when `listen_port` was 0."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the forwarder is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host,
                    self.target_port,
                    local_addr=(self.source_host, 0) if self.source_host else None,
                )
            except OSError:
                writer.close()
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._tasks.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError, OSError:
        pass
    finally:
        # Half-close so HTTP keep-alive and websockets end cleanly on both sides.
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


async def _serve(
    listen_host: str,
    listen_port: int,
    target_host: str,
    target_port: int,
    source_host: str | None,
) -> None:
    forwarder = TcpForwarder(
        listen_host, listen_port, target_host, target_port, source_host=source_host
    )
    await forwarder.start()
    # The caller waits for this line before it connects.
    print(f"listening on {listen_host}:{forwarder.bound_port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await forwarder.close()


def main(argv: list[str] | None = None) -> None:
    """Run a forwarder until killed: ``LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT``,
    optionally ``--source ADDRESS`` for the onward connections.

    The lab runs it inside a namespace (``ip netns exec``) to stand for a TCP tunnel, such
    as ``ssh -R`` or ``socat``, ending on the hub.
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("listen_host")
    parser.add_argument("listen_port", type=int)
    parser.add_argument("target_host")
    parser.add_argument("target_port", type=int)
    parser.add_argument("--source", default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _serve(
                args.listen_host, args.listen_port, args.target_host, args.target_port, args.source
            )
        )


if __name__ == "__main__":
    main()
