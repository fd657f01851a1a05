"""``rhmnet-studio``: draw scribbles on your own video in the browser, propagate, correct, export.

    rhmnet-studio --frames VIDEO_FILE_OR_FOLDER --checkpoint CK [--out DIR] [--port N] [--host 127.0.0.1]
                  [--config NAME] [KEY=VALUE ...]

Serves a local page (plain HTML, JavaScript and canvas) and prints its URL with a random token on a line
of its own; every request must carry the token (the URL's ``?token=``, then a cookie or the
``X-Studio-Token`` header). Files are written only inside ``--out``: the strokes as they are drawn
(``strokes.autosave.json``) and, on Export, ``masks/<frame>.png``, ``overlay.mp4`` and ``strokes.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from json import JSONDecodeError
from pathlib import Path
from typing import Any, Optional

from rhmnet.cli_args import ArgumentParser
from rhmnet.errors import RHMNetError, run_cli
from rhmnet.guards import OutputExistsError, check_device, is_inside

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_COOKIE = "rhmnet_studio_token"
TOKEN_HEADER = "x-studio-token"


class StudioStartError(RHMNetError, ValueError):
    """The studio cannot start (a port in use, a missing web framework)."""


def build_app(project: Any, token: str, fps: float = 12.0) -> Any:
    """The Starlette application serving ``project`` (a :class:`~rhmnet.studio.project.Project`)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from rhmnet.data.io import DAVIS_PALETTE
    from rhmnet.labels import MAX_OBJECTS
    from rhmnet.studio.project import ExportExists, StudioError, overlay_png

    def authorised(request: Request) -> bool:
        given = (request.query_params.get("token") or request.headers.get(TOKEN_HEADER)
                 or request.cookies.get(TOKEN_COOKIE) or "")
        return hmac.compare_digest(given.encode(), token.encode())

    class TokenMiddleware:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and not authorised(Request(scope)):
                response = JSONResponse({"error": "missing or wrong token: open the URL the studio printed"}, 403)
                await response(scope, receive, send)
                return
            await self.app(scope, receive, send)

    def frame_index(request: Request) -> int:
        index = int(request.path_params["index"])
        if not 0 <= index < len(project.frames):
            raise StudioError(f"frame {index} outside 0..{len(project.frames) - 1}")
        return index

    async def index(request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    async def info(request: Request) -> Response:
        h, w = project.frames.size
        return JSONResponse({"frames": len(project.frames), "names": project.frames.names, "height": h, "width": w,
                             "fps": fps, "out": str(project.out), "source": str(project.frames.path),
                             "colours": DAVIS_PALETTE[1 : MAX_OBJECTS + 1].tolist()})

    async def frame(request: Request) -> Response:
        data = await run_in_threadpool(project.frames.jpeg, frame_index(request))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    async def mask(request: Request) -> Response:
        data = project.mask(frame_index(request))
        if data is None:
            return Response(status_code=204)
        return Response(await run_in_threadpool(overlay_png, data), media_type="image/png",
                        headers={"Cache-Control": "no-store"})

    async def strokes(request: Request) -> Response:
        if request.method == "POST":
            return JSONResponse(await run_in_threadpool(project.add_stroke, await request.json()))
        return JSONResponse(project.stroke_state())

    async def undo(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(project.undo))

    async def redo(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(project.redo))

    async def propagate(request: Request) -> Response:
        return JSONResponse({"job": await run_in_threadpool(project.propagate)})

    async def status(request: Request) -> Response:
        return JSONResponse(project.status())

    async def export(request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        overwrite = bool(body.get("overwrite", False)) if isinstance(body, dict) else False
        return JSONResponse(await run_in_threadpool(project.export, overwrite, fps))

    async def user_error(request: Request, exc: Exception) -> Response:
        code = 409 if isinstance(exc, ExportExists) else 400
        return JSONResponse({"error": str(exc), "confirm": isinstance(exc, ExportExists)}, code)

    async def bad_request(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"bad request: {exc}"}, 400)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/frame/{index:int}", frame),
        Route("/api/mask/{index:int}", mask),
        Route("/api/strokes", strokes, methods=["GET", "POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/redo", redo, methods=["POST"]),
        Route("/api/propagate", propagate, methods=["POST"]),
        Route("/api/status", status),
        Route("/api/export", export, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        project.close()  # a running propagation stops with the server

    app = Starlette(routes=routes, exception_handlers={RHMNetError: user_error, JSONDecodeError: bad_request},
                    lifespan=lifespan)
    app.add_middleware(TokenMiddleware)
    return app


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="rhmnet-studio",
                            description="Scribble studio: segment your own video in the browser (RHMNet)")
    parser.add_argument("--frames", required=True, help="a video file or a folder of frames")
    parser.add_argument("--checkpoint", required=True, help="checkpoint (ours, the authors' or the demo's)")
    parser.add_argument("--out", default=None, help="output folder (default: <frames name>_studio here)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--strokes", default=None, help="continue from a strokes.json of an earlier export")
    parser.add_argument("--config", default=None, help="config name/path (default: from the checkpoint)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: the idle cores)")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    return parser


def default_out(frames: Path) -> Path:
    return Path(f"{frames.resolve().name.rsplit('.', 1)[0] if frames.is_file() else frames.resolve().name}_studio")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line error when the port is in use or the address is not this machine's."""
    if not 0 <= port <= 65535:
        raise StudioStartError(f"--port must lie in 0..65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StudioStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (port in use? try --port 0)"
                               ) from None
    sock.listen(64)
    return sock


def check_arguments(args: argparse.Namespace) -> tuple[Path, Path, Optional[Path]]:
    """Frames, output folder and strokes file, checked before anything is loaded."""
    frames = Path(args.frames)
    if not frames.exists():
        raise FileNotFoundError(f"frames not found: {frames}")
    out = Path(args.out) if args.out else default_out(frames)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} exists and is not a folder")
    source_dir = frames if frames.is_dir() else frames.parent
    if is_inside(source_dir, out):
        raise OutputExistsError(f"--out {out} holds the input frames ({frames}); choose another output folder")
    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint not found: {args.checkpoint}")
    strokes = Path(args.strokes) if args.strokes else None
    if strokes is not None and not strokes.is_file():
        raise FileNotFoundError(f"strokes file not found: {strokes}")
    if args.device:
        check_device(args.device)
    return frames, out, strokes


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    frames_path, out, strokes = check_arguments(args)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401 - the optional extra
    except ImportError as exc:
        raise StudioStartError(f"the studio needs its extra: pip install 'rhmnet[studio]' ({exc})") from None
    from rhmnet.config import load_config
    from rhmnet.runtime import apply_threads, make_segmenter, select_device
    from rhmnet.studio.frames import FrameStore
    from rhmnet.studio.project import Project

    sock = bind(args.host, args.port)
    try:
        apply_threads(args.threads)
        device = select_device(args.device)
        config = load_config(args.config, args.overrides) if args.config else None
        model = load_checkpoint(Path(args.checkpoint), config, device, args.overrides)
        frames = FrameStore(frames_path)
        out.mkdir(parents=True, exist_ok=True)
        project = Project(frames, make_segmenter(model, model.cfg), out, strokes)
        token = secrets.token_urlsafe(24)
        app = build_app(project, token, frames.fps)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"rhmnet-studio: {len(frames)} frames of {frames.path}; results go to {out}", flush=True)
        print(f"http://{shown}:{port}/?token={token}", flush=True)
        run_server(app, sock)
    finally:
        sock.close()
    return 0


def load_checkpoint(path: Path, config: Any, device: Any, overrides: Optional[list[str]] = None) -> Any:
    """``load_model`` of ours, the authors' or the demo's checkpoints (a bad file is one line, from
    ``guards.load_weights_only``)."""
    from rhmnet.model_io import load_model

    return load_model(path, config=config, device=device, overrides=overrides)


def run_server(app: Any, sock: socket.socket) -> None:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def cli(argv: Optional[list[str]] = None) -> int:
    """Entry point with user errors turned into one-line messages (exit 2)."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
