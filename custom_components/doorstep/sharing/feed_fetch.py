"""Fetching a feed so that every hub's request is byte for byte the same.

The feed host must not be able to tell homes apart by what they send. So the session
carries no cookie jar, the headers are a fixed list (aiohttp's defaults depend on which
compression libraries happen to be installed, so none are left to it), and nothing per
home goes into the URL. The one thing that varies is ``If-None-Match``, and it carries
the host's own ETag back: every hub that saw the same feed sends the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
import ssl

import aiohttp
from multidict import CIMultiDict

from .exceptions import FeedRejected
from .feeds import MAX_FEED_BYTES

USER_AGENT = "Doorstep-feed/1"
# Fixed and ordered; aiohttp adds only Host (the same for every hub of one feed).
FEED_HEADERS: tuple[tuple[str, str], ...] = (
    ("User-Agent", USER_AGENT),
    ("Accept", "application/json"),
    ("Accept-Encoding", "identity"),
)
_MAX_ETAG = 256


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A 200 with the feed's bytes, or a 304 (``body`` None) meaning nothing changed."""

    body: bytes | None
    etag: str | None


def feed_session() -> aiohttp.ClientSession:
    """A session for feeds only: no cookies kept, no automatic headers, no keep-alive.

    Closing the connection after each fetch means a feed host cannot link two polls of
    one hub by their TCP connection either.
    """
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        connector=aiohttp.TCPConnector(force_close=True),
        auto_decompress=False,
    )


def request_headers(etag: str | None) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(FEED_HEADERS)
    if etag is not None:
        headers["If-None-Match"] = etag
    return headers


async def fetch_feed(
    session: aiohttp.ClientSession,
    url: str,
    *,
    etag: str | None,
    ssl_context: ssl.SSLContext,
    proxy: str | None = None,
    time_limit: float = 60.0,
) -> FetchResult:
    """GET ``url`` conditionally; FeedRejected("unreachable" or "too_large") on failure."""
    try:
        async with session.get(
            url,
            headers=request_headers(etag),
            ssl=ssl_context,
            proxy=proxy,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=time_limit),
        ) as response:
            if response.status == 304:
                return FetchResult(None, etag)
            if response.status != 200:
                raise FeedRejected("unreachable", f"HTTP {response.status}")
            if response.headers.get("Content-Encoding", "identity") != "identity":
                raise FeedRejected("malformed", "the feed came compressed, which was not asked")
            declared = response.content_length
            if declared is not None and declared > MAX_FEED_BYTES:
                raise FeedRejected("too_large", f"Content-Length {declared}")
            body = await response.content.read(MAX_FEED_BYTES + 1)
            while len(body) <= MAX_FEED_BYTES and not response.content.at_eof():
                more = await response.content.read(MAX_FEED_BYTES + 1 - len(body))
                if not more:
                    break
                body += more
            if len(body) > MAX_FEED_BYTES:
                raise FeedRejected("too_large", f"more than {MAX_FEED_BYTES} bytes")
            new_etag = response.headers.get("ETag")
            if new_etag is not None and (
                len(new_etag) > _MAX_ETAG or not new_etag.isascii() or not new_etag.isprintable()
            ):
                new_etag = None
            return FetchResult(body, new_etag)
    except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as err:
        raise FeedRejected("unreachable", f"{type(err).__name__}: {err}") from None
