"""A real RTSP camera for tests and the lab: Debian's GStreamer RTSP server.

Runs under the system Python (``/usr/bin/python3``, which has ``python3-gi``), never the
project's venv, as its own process:

    /usr/bin/python3 scripts/lab/rtsp_camera.py --address 127.0.0.1 --port 0 \
        --path /door --username viewer --password secret

It prints one line, ``ready <port>``, once it listens, then serves until killed. The
picture is GStreamer's test pattern encoded by x264: constrained baseline, or with
``--profile main-b-frames`` Main profile with B-frames (which browsers cannot take as it is),
or, with ``--no-video``, an Opus tone and no video at all. ``--sound pcmu`` adds a steady
800 Hz tone as G.711 µ-law at 8 kHz beside the video, as a DoorBird's stream carries its
microphone. With ``--tls-cert`` and ``--tls-key`` it speaks RTSP over TLS only (``rtsps://``).
Packages: see scripts/system-packages.

Kept to the Python of Debian's system interpreter (3.11): no newer syntax here.
"""

import argparse
import signal
import sys

import gi  # type: ignore[import-not-found, unused-ignore]

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # type: ignore[import-not-found, unused-ignore]  # noqa: E402

_VIDEO = (
    "videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width=320,height=240,framerate=15/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bframes={bframes} "
    "! video/x-h264,profile={profile} "
    "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1"
)
_AUDIO_ONLY = (
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample "
    "! opusenc ! rtpopuspay name=pay0 pt=97"
)
# A DoorBird's microphone, as its LAN API document gives its sound: G.711 µ-law, 8 kHz.
_PCMU_SOUND = (
    "audiotestsrc is-live=true wave=sine freq=800 volume=0.4 ! audioconvert ! audioresample "
    "! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0"
)
# Re-serves an H.264 MPEG-TS stream fetched over HTTP as it is, without decoding: the
# benchmark's doorbell stream, so an RTSP camera sends exactly the frames the Doorstep
# protocol sends. No do-timestamp: stamping the HTTP chunks on arrival made the server
# send 28.8 of the doorbell's 30 fps while its backlog grew; tsdemux's own timestamps
# (the doorbell's) keep the pace. latency=0: tsdemux otherwise declares 700 ms for a live
# source, and the server then sends every frame that much late.
_HTTP_TS = (
    "souphttpsrc location={url} is-live=true "
    "! tsdemux latency=0 ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1"
)
_ROLE = "viewer"


def _launch_line(args: argparse.Namespace) -> str:
    if args.http_ts is not None:
        return "( " + _HTTP_TS.format(url=args.http_ts) + " )"
    if args.no_video:
        return "( " + _AUDIO_ONLY + " )"
    # B-frames are what make the hub fall back to transcoding.
    if args.profile == "main-b-frames":
        video = _VIDEO.format(profile="main", bframes=2)
    else:
        video = _VIDEO.format(profile=args.profile, bframes=0)
    sound = "  " + _PCMU_SOUND if args.sound == "pcmu" else ""
    return "( " + video + sound + " )"


def _add_auth(
    server: object, factory: object, username: str | None, password: str | None, tls: object
) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, _ROLE)
    if username is not None:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(username, password), token)
    else:
        auth.set_default_token(token)  # anyone may watch
    if tls is not None:
        # The server then takes TLS connections only.
        auth.set_tls_certificate(tls)
    server.set_auth(auth)  # type: ignore[attr-defined]
    permissions = Gst.Structure.new_from_string(
        _ROLE + ", media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
    )
    factory.add_role_from_structure(permissions)  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554, help="0 picks a free port")
    parser.add_argument("--path", default="/door")
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument(
        "--profile",
        choices=("constrained-baseline", "main-b-frames"),
        default="constrained-baseline",
    )
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--sound", choices=("none", "pcmu"), default="none")
    parser.add_argument("--tls-cert", help="PEM certificate: serve rtsps:// only")
    parser.add_argument("--tls-key", help="PEM key of --tls-cert")
    parser.add_argument(
        "--http-ts",
        metavar="URL",
        help="serve this HTTP MPEG-TS stream's H.264 as it is, instead of the test pattern",
    )
    args = parser.parse_args()
    if (args.username is None) != (args.password is None):
        parser.error("give both --username and --password, or neither")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(_launch_line(args))
    # One encoder for every client, as a camera has one sensor.
    factory.set_shared(True)
    tls = None
    if args.tls_cert is not None:
        tls = Gio.TlsCertificate.new_from_files(args.tls_cert, args.tls_key)
    if args.username is not None or tls is not None:
        _add_auth(server, factory, args.username, args.password, tls)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.address}:{args.port}", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
