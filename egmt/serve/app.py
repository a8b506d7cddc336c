"""The demo's web app (Starlette): one static page and a small JSON API around :class:`DemoPipeline`.

Routes:
  GET  /                     the page (``page.html`` beside this module; plain HTML + JS)
  GET  /api/info             checkpoint name, bundled samples, upload limits
  GET  /samples/NAME/ROLE    a bundled sample image (ROLE: ir or vi), for the page's previews
  POST /api/fuse             multipart: ``ir`` and ``vi`` files, or ``sample`` (a bundled pair's
                             name); ``entities`` (comma-separated, empty: caption-free).
                             200: JSON with the images as PNG data URIs, entities, scores, heat
                             maps; 4xx: ``{"error": "one line"}``

A request body over ``max_upload_bytes`` is refused (413) from its Content-Length or, without
one, as soon as the bytes received pass the limit. Fusion runs in a worker thread, so the server
keeps answering; an unexpected failure answers 500 with one line and is logged, and the server
keeps serving.
"""

from __future__ import annotations

import base64
import logging
import math
import mimetypes
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from egmt.data.pairs import MODALITIES, match_folders
from egmt.errors import EGMTError
from egmt.serve.pipeline import MIN_SIDE, DemoPipeline, DemoResult, Upload
from egmt.serve.scores import FAST_METRICS

PAGE = Path(__file__).with_name("page.html")
#: Default limit on one request's body (both uploads together).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024

log = logging.getLogger("egmt.serve")


class _TooLarge(Exception):
    pass


def find_samples(folder: Path | None) -> dict[str, tuple[Path, Path]]:
    """``{stem: (ir, vi)}`` of a bundled-samples folder ``folder/{ir,vi}/STEM.ext``, sorted by stem
    and paired as ``egmt fuse`` pairs two folders (:func:`egmt.data.pairs.match_folders`): a file
    without its partner is left out (logged), two files of one stem are an :class:`EGMTError`.
    Empty if ``folder`` is None or lacks ``ir/`` or ``vi/``."""
    if folder is None or not all((folder / m).is_dir() for m in MODALITIES):
        return {}
    pairs, problems = match_folders(folder / "ir", folder / "vi")
    for problem in problems:
        log.warning("bundled samples: %s; left out", problem)
    return {p.name: (p.ir, p.vi) for p in pairs}


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def result_json(result: DemoResult, name: str) -> dict:
    """A :class:`DemoResult` as the page reads it (images as PNG data URIs, NaN as null)."""
    return {
        "name": name,
        "width": result.width,
        "height": result.height,
        "ir": _data_uri(result.ir_png),
        "vi": _data_uri(result.vi_png),
        "fused": _data_uri(result.fused_png),
        "entities": result.entities,
        "entity_source": result.entity_source,
        "scores": {k: _number(v) for k, v in result.scores.items()},
        "heatmaps": [{"entity": e, "image": _data_uri(png), "mean_weight": _number(m)} for e, png, m in result.heatmaps],
        "heatmap_note": result.heatmap_note,
        "seconds": round(result.seconds, 3),
    }


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


def create_app(
    pipeline: DemoPipeline, samples: Path | None = None, checkpoint: str = "", max_upload_bytes: int = MAX_UPLOAD_BYTES
) -> Starlette:
    """The Starlette app serving ``pipeline``; ``samples``: a folder ``{ir,vi}/STEM.ext`` whose
    pairs the page offers (None: none)."""
    pairs = find_samples(samples)
    too_large = f"upload too large: the limit is {max_upload_bytes / 2**20:.3g} MB for both images together"

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "checkpoint": checkpoint,
                "samples": list(pairs),
                "max_upload_bytes": max_upload_bytes,
                "max_pixels": pipeline.max_pixels,
                "min_side": MIN_SIDE,
                "metrics": [*FAST_METRICS, "seam_ratio", "target_retention"],
            }
        )

    async def sample_image(request: Request) -> Response:
        name, role = request.path_params["name"], request.path_params["role"]
        if name not in pairs or role not in MODALITIES:
            return _error(f"no bundled sample {name!r}/{role!r}", 404)
        path = pairs[name][0 if role == "ir" else 1]
        return Response(path.read_bytes(), media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    async def fuse(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes:
            return _error(too_large, 413)
        seen = 0

        async def receive():
            nonlocal seen
            message = await request.receive()
            seen += len(message.get("body", b""))
            if seen > max_upload_bytes:
                raise _TooLarge
            return message

        try:
            form = await Request(request.scope, receive).form(max_files=2, max_fields=4, max_part_size=64 * 1024)
            sample = str(form.get("sample") or "").strip()
            entities = str(form.get("entities") or "")
            if sample:
                if sample not in pairs:
                    return _error(f"no bundled sample {sample!r}")
                ir_path, vi_path = pairs[sample]
                ir, vi, name = Upload(ir_path.name, ir_path.read_bytes()), Upload(vi_path.name, vi_path.read_bytes()), sample
            else:
                files = [form.get(role) for role in MODALITIES]
                named = [(f.filename, f) for f in files if isinstance(f, UploadFile) and f.filename]
                if len(named) != len(files):
                    return _error("choose an infrared and a visible image (or a bundled sample)")
                ir, vi = [Upload(filename, await f.read()) for filename, f in named]
                name = Path(ir.filename).stem or "fused"
        except _TooLarge:
            return _error(too_large, 413)
        except Exception as e:  # a malformed form (too many fields, a field too long...)
            return _error(f"bad request: {e}")
        try:
            result = await run_in_threadpool(pipeline.run, ir, vi, entities)
        except EGMTError as e:
            return _error(str(e))
        except Exception as e:
            log.exception("fusion failed")
            return _error(f"fusion failed: {type(e).__name__}: {e}", 500)
        return JSONResponse(result_json(result, name))

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/info", info),
            Route("/samples/{name}/{role}", sample_image),
            Route("/api/fuse", fuse, methods=["POST"]),
        ]
    )
