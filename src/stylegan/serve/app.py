"""The web service: a page (``/``), its static files, and the JSON/PNG API behind it.

``create_app(G)`` builds a FastAPI application around a loaded generator; ``stylegan serve`` runs it with
uvicorn. Tests use it directly with Starlette's TestClient (no port needed).

What holds it up under load:

- The network is loaded once, by the caller. All inference runs on one worker thread
  (:class:`~stylegan.serve.worker.InferenceWorker`) with a bounded queue; a request that finds the queue
  full gets a 503 with a JSON body and ``Retry-After`` at once.
- Every parameter is validated before anything is queued (seed in [0, 2^32), ψ finite in [−2, 2], noise
  mode, crossover in [0, num_ws], steps in [2, max_steps], class required for conditional networks and refused
  for others, no unknown parameters); errors are 422 with a readable ``message``. Nothing picks a class: the
  page always sends the one its selector shows.
- A StyleGAN3 network's image can be translated and rotated (``translate_x``, ``translate_y``, ``rotate`` on
  ``/api/image``: its Fourier input's transform); other networks refuse those parameters by name.
- Truncation of a conditional network pulls towards the requested class's own average w by default
  (``trunc=class``; ``trunc=global`` for the overall average, as the authors' tools), so that a low ψ keeps
  the class. The class averages are computed once, at start-up. The image size is the network's; nothing asks
  for another.
- Nothing from a request reaches the file system: the static files are read into memory at start-up and
  looked up by name in a dict.
- Images that are deterministic (noise ``const`` or ``none``) carry ``Cache-Control: public`` and an ETag
  (a conditional request is answered 304 without touching the network); ``random`` noise is ``no-store``.
"""

import asyncio
import hashlib
import html
import json
import logging
import math
from contextlib import asynccontextmanager
from importlib import resources
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from stylegan.nn.noise import NOISE_MODES
from stylegan.serve.render import Renderer
from stylegan.serve.worker import InferenceWorker, QueueFull, WorkerStopped

log = logging.getLogger("stylegan.serve")

SEED_MAX = 2 ** 32
PSI_MIN, PSI_MAX = -2.0, 2.0
#: The ψ range of the page's slider, that of the authors' tools; its "beyond" box widens it to the API's range.
SLIDER_PSI_MIN, SLIDER_PSI_MAX = 0.0, 1.0
#: The page's edit sliders: how many latent directions (SeFa, computed once at start-up) and the largest amount
#: along each, in units of the direction's spread.
SLIDERS, EDIT_MAX = 5, 5.0
#: The largest move of a StyleGAN3 network's image: translation in image widths, rotation in degrees.
TRANSLATE_MAX, ROTATE_MAX = 1.0, 360.0
#: The parameters of that move (``/api/image`` of a StyleGAN3 network only).
MOVE_PARAMS = ("translate_x", "translate_y", "rotate")
#: Files served from ``stylegan/serve/static``, by suffix; anything else in the folder is not served.
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
#: Deterministic images may be cached this long (s). URLs from the page carry the model id (``v``), so a
#: server restarted with another network never shows cached images of the old one.
CACHE_MAX_AGE = 86400
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")

NoiseMode = Literal["const", "random", "none"]
TruncMode = Literal["class", "global"]
assert set(NoiseMode.__args__) == set(NOISE_MODES)  # type: ignore[attr-defined]


class ErrorBody(BaseModel):
    """Every error response: a short machine-readable code and a message for people."""

    error: str = Field(description="Error code: invalid_parameter, busy, not_found, internal, ...")
    message: str = Field(description="What is wrong, in words.")
    detail: list[dict[str, Any]] | None = Field(None, description="Per-parameter problems, for invalid_parameter.")


class Info(BaseModel):
    """The served network and the service's limits."""

    name: str = Field(description="Model name (a pretrained name or the checkpoint's file name).")
    title: str = Field(description="Title of the page.")
    model_id: str = Field(description="Digest of the network's tensors; changes when the network changes.")
    card: str | None = Field(description="Model card (Markdown), when one is known.")
    resolution: int = Field(description="The longer side of the images in pixels (fixed by the network).")
    width: int = Field(description="Image width in pixels.")
    height: int = Field(description="Image height in pixels (below the width for a non-square network).")
    channels: int = Field(description="Image channels: 1 (grayscale) or 3 (RGB).")
    num_ws: int = Field(description="Number of style inputs (w vectors); crossover is in [0, num_ws].")
    conditional: bool = Field(description="Whether the network takes a class; then `class` is required.")
    default_trunc: str = Field(description="What truncation pulls towards when `trunc` is not given: `class` "
                                           "(the class's own average w) for a conditional network, else `global`.")
    c_dim: int = Field(description="Number of classes (0 when unconditional).")
    z_dim: int = Field(description="Size of the latent z.")
    w_dim: int = Field(description="Size of the intermediate latent w.")
    noise_modes: list[str] = Field(description="Accepted values of `noise`.")
    psi_min: float = Field(description="Smallest accepted truncation ψ.")
    psi_max: float = Field(description="Largest accepted truncation ψ.")
    default_psi: float = Field(description="ψ the page starts with.")
    slider_psi_min: float = Field(description="Lower end of the page's ψ slider (its 'beyond' box widens it).")
    slider_psi_max: float = Field(description="Upper end of the page's ψ slider.")
    seed_max: int = Field(description="Seeds are integers in [0, seed_max).")
    max_steps: int = Field(description="Largest `steps` of /api/interp.")
    max_queue: int = Field(description="Requests that may wait for the network before new ones get 503.")
    directions: int = Field(description="Latent directions `edit` accepts amounts for (0: no edits).")
    direction_method: str | None = Field(description="How the directions were found (`sefa`: closed-form "
                                                     "factorization of the style weights).")
    movable: bool = Field(description="Whether /api/image takes `translate_x`, `translate_y` and `rotate` (a "
                                      "StyleGAN3 network: its Fourier input is translated and rotated).")
    synthesis: str = Field("eager", description="How images are computed: `eager` (PyTorch's float32 modules), "
                                                "`compiled` (torch.compile) or `onnx` (onnxruntime): the synthesis "
                                                "network for one image, float32, for noise `const`, within 1e-4 "
                                                "of eager.")


class Health(BaseModel):
    status: str = Field(description="'ok' while the worker runs.")
    queued: int = Field(description="Requests waiting for the network.")
    running: bool = Field(description="Whether a request is being computed now.")
    max_queue: int = Field(description="Queue bound.")
    served: int = Field(description="Requests computed since start-up.")
    failed: int = Field(description="Requests whose computation raised.")
    rejected: int = Field(description="Requests refused with 503 because the queue was full.")
    busy_seconds: float = Field(description="Total time spent computing.")


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers or {}


def _error(status: int, error: str, message: str, detail=None, headers=None) -> JSONResponse:
    body = {"error": error, "message": message}
    if detail is not None:
        body["detail"] = detail
    h = {"Cache-Control": "no-store"}
    h.update(headers or {})
    return JSONResponse(status_code=status, content=body, headers=h)


def _describe(err: dict) -> dict:
    loc = [str(x) for x in err.get("loc", ()) if x not in ("query", "path")]
    param = ".".join(loc) or "request"
    if err.get("type") == "missing":
        msg = "required parameter is missing"
    else:
        msg = err.get("msg", "invalid value")
        if "input" in err and isinstance(err["input"], (str, int, float)):
            msg += f" (got {str(err['input'])[:40]!r})"
    return {"parameter": param, "message": msg}


class _Headers:
    """Pure ASGI middleware: security headers on every response (the page may load nothing from elsewhere)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h.setdefault("X-Content-Type-Options", "nosniff")
                h.setdefault("Referrer-Policy", "no-referrer")
                h.setdefault("Content-Security-Policy", CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: The longest request target (path and query) answered; longer ones get 414. The server reads request heads up
#: to :data:`MAX_REQUEST_HEAD` bytes, so that it can answer them instead of dropping the connection.
MAX_URI = 8192
MAX_REQUEST_HEAD = 4 * 2 ** 20


def uvicorn_settings() -> dict:
    """What every server of this app runs with (``stylegan serve`` and :class:`BackgroundServer`): the h11
    implementation, reading request heads of up to :data:`MAX_REQUEST_HEAD` bytes."""
    return {"http": "h11", "h11_max_incomplete_event_size": MAX_REQUEST_HEAD}


class _UriTooLong:
    """Pure ASGI middleware: a request target over :data:`MAX_URI` bytes is answered 414 with the API's error
    body, whatever its path."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) > MAX_URI:
            response = _error(414, "uri_too_long", f"the request target is longer than {MAX_URI} bytes")
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class _HeadAsGet:
    """Pure ASGI middleware: HEAD is answered as GET without the body (same status and headers), so that every
    page and API path takes it, as HTTP asks, without a second route per path in the schema."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def send_headers_only(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(dict(scope, method="GET"), receive, send_headers_only)


def load_static() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once: name → (content, media type)."""
    out: dict[str, tuple[bytes, str]] = {}
    folder = resources.files("stylegan.serve") / "static"
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in STATIC_TYPES:
            out[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    if "index.html" not in out:
        raise RuntimeError("stylegan/serve/static/index.html is missing from the installation")
    return out


def network_digest(G) -> str:
    """A short digest of the generator's tensors (identifies the model in cache keys)."""
    try:
        from stylegan.checkpoint import tensors_digest

        return tensors_digest(G.state_dict())[:16]
    except Exception:  # a stand-in without state_dict
        return hashlib.sha256(repr(type(G)).encode()).hexdigest()[:16]


def index_page(static: dict[str, tuple[bytes, str]], title: str, c_dim: int = 0) -> bytes:
    """The page served at ``/``: ``static/index.html`` with its title (HTML-escaped) and an example image
    query that this network answers (with a class for a conditional one) filled in."""
    example = "seed=42&amp;psi=0.7" + ("&amp;class=0" if c_dim else "")
    return static["index.html"][0].replace(b"{{TITLE}}", html.escape(title).encode()).replace(
        b"{{EXAMPLE}}", example.encode())


def page_directions(G, num: int):
    """The first ``num`` latent directions of ``G`` for the page's sliders, computed once: SeFa where the network
    has modulated convolutions, else GANSpace where it has a mapping network (StyleGAN's AdaIN); None when
    ``num`` is 0 or the network has neither (ProGAN)."""
    if num <= 0:
        return None
    from stylegan.tools.directions import ganspace, sefa

    num = min(num, int(G.w_dim))
    try:
        return sefa(G, num=num)
    except ValueError:
        pass
    if getattr(G.mapping, "w_avg", None) is None:
        return None
    return ganspace(G, num=num, samples=2000)


class ServeState:
    """What the routes of one application share: the renderer of the loaded network, the inference worker,
    the model's identity and sizes, the page's files, and the :class:`Info` the API reports."""

    def __init__(self, G, *, name: str, title: str, card: str | None, max_queue: int, max_steps: int,
                 default_psi: float, model_id: str | None, worker: InferenceWorker | None, sliders: int = SLIDERS,
                 synthesis: str = "eager"):
        self.directions = page_directions(G, sliders)
        self.renderer = Renderer(G, self.directions, synthesis=synthesis)
        # Networks without a mapping network's w_avg (ProGAN, StyleGAN A/B) cannot truncate: the page pins ψ to 1.
        can_truncate = getattr(G.mapping, "w_avg", None) is not None
        psi_min, psi_max = (PSI_MIN, PSI_MAX) if can_truncate else (1.0, 1.0)
        slider = (SLIDER_PSI_MIN, SLIDER_PSI_MAX) if can_truncate else (1.0, 1.0)
        if not can_truncate:
            default_psi = 1.0
        if can_truncate and G.c_dim:
            self.renderer.class_averages()  # once, before the first request
        self.worker = worker or InferenceWorker(max_queue=max_queue)
        self.model_id = model_id or network_digest(G)
        self.name, self.title, self.max_steps = name, title, max_steps
        self.num_ws, self.c_dim, self.res = int(G.num_ws), int(G.c_dim), int(G.resolution)
        self.height, self.width = (int(v) for v in G.img_shape)
        self.static = load_static()
        self.index_html = index_page(self.static, title, self.c_dim)
        self.info = Info(name=name, title=title, model_id=self.model_id, card=card, resolution=self.res,
                         width=self.width, height=self.height,
                         channels=int(G.img_channels), num_ws=self.num_ws, conditional=self.c_dim > 0,
                         c_dim=self.c_dim, z_dim=int(G.z_dim), w_dim=int(G.w_dim), noise_modes=list(NOISE_MODES),
                         psi_min=psi_min, psi_max=psi_max, default_psi=default_psi, slider_psi_min=slider[0],
                         slider_psi_max=slider[1], default_trunc="class" if self.c_dim else "global",
                         seed_max=SEED_MAX,
                         max_steps=max_steps, max_queue=self.worker.max_queue,
                         directions=0 if self.directions is None else len(self.directions.directions),
                         direction_method=None if self.directions is None else self.directions.method,
                         movable=self.renderer.movable, synthesis=self.renderer.synthesis)

    def description(self) -> str:
        """The API's description in the OpenAPI schema: the network's shape and the service's limits."""
        kind = f"conditional, {self.c_dim} classes" if self.c_dim else "unconditional"
        return (f"Images from the generator **{self.name}** ({self.width}×{self.height}, {self.num_ws} style inputs, "
                f"{kind}). PNG endpoints are deterministic for noise `const` and `none` (cacheable); "
                f"at most {self.worker.max_queue} requests wait for the network, more get 503.")


# -- parameters -----------------------------------------------------------------------------------------------
def only_params(c_dim: int, *allowed: str):
    """A dependency refusing unknown and repeated query parameters (a typo must not silently fall back to a
    default); ``v`` (the cache key) is always allowed."""
    allowed_set = set(allowed) | {"v"}

    def check(request: Request):
        repeated = sorted(k for k in set(request.query_params) if len(request.query_params.getlist(k)) > 1)
        if repeated:  # which one would win is not obvious; say so rather than pick
            raise ApiError(422, "invalid_parameter",
                           f"parameter(s) given more than once: {', '.join(map(repr, repeated))}")
        unknown = sorted(set(request.query_params) - allowed_set)
        if unknown:
            hint = (" (this network is unconditional)" if "class" in unknown and c_dim == 0 else
                    " (translate_x, translate_y and rotate: /api/image of a StyleGAN3 network)"
                    if set(unknown) & set(MOVE_PARAMS) else "")
            raise ApiError(422, "invalid_parameter",
                           f"unknown parameter(s) {', '.join(map(repr, unknown))}{hint}; this endpoint takes "
                           f"{', '.join(sorted(allowed_set))}")
    return Depends(check)


def query_types(num_ws: int, c_dim: int, max_steps: int) -> SimpleNamespace:
    """The annotated types of the image endpoints' query parameters, with the bounds and descriptions of this
    network (fresh for every application)."""
    seed_doc = "Seed: an integer in [0, 2^32). Names the latent z = RandomState(seed).randn(z_dim)."
    class_doc = (f"Class index in [0, {c_dim}): required, this network is conditional (nothing picks a class)."
                 if c_dim else "Class index, for conditional networks only: this network is unconditional, so "
                               "not accepted.")
    trunc_doc = ("What truncation pulls towards: `class` (the class's own average w: a low ψ keeps the class; "
                 "the default) or `global` (the overall average, as the authors' tools)." if c_dim else
                 "What truncation pulls towards: `global` (the overall average; this network has no classes).")
    return SimpleNamespace(
        Seed=Annotated[int, Query(ge=0, lt=SEED_MAX, description=seed_doc, examples=[42])],
        SeedA=Annotated[int, Query(ge=0, lt=SEED_MAX, description="Seed of image A, in [0, 2^32).", examples=[1])],
        SeedB=Annotated[int, Query(ge=0, lt=SEED_MAX, description="Seed of image B, in [0, 2^32).", examples=[2])],
        Psi=Annotated[float, Query(ge=PSI_MIN, le=PSI_MAX, allow_inf_nan=False,
                                   description="Truncation ψ, finite, in [-2, 2]: 1 = none, 0 = the average image; "
                                               "0.5-0.7 trades variety for quality.")],
        Noise=Annotated[NoiseMode, Query(description="Noise inputs: `const` (fixed, deterministic), `random` (new "
                                                     "each request, not cached), `none`.")],
        Class=Annotated[int | None, Query(alias="class", ge=0, description=class_doc)],
        Trunc=Annotated[TruncMode | None, Query(description=trunc_doc)],
        Crossover=Annotated[int, Query(ge=0, le=num_ws,
                                       description=f"Style layers [0, crossover) come from A (coarse: pose, shape), "
                                                   f"the rest from B (fine: texture, colour); in [0, {num_ws}].")],
        Steps=Annotated[int, Query(ge=2, le=max_steps,
                                   description=f"Number of images in the strip, endpoints included; "
                                               f"in [2, {max_steps}].")],
        Edit=Annotated[str | None, Query(max_length=32 * SLIDERS, pattern=r"^[-+0-9.eE]+(,[-+0-9.eE]+)*$",
                                         description=f"Amounts along the first latent directions (see /api/info), "
                                                     f"comma-separated, each finite in [-{EDIT_MAX:g}, "
                                                     f"{EDIT_MAX:g}], in units of the direction's spread.",
                                         examples=["1.5,0,-2"])],
        Translate=Annotated[float, Query(ge=-TRANSLATE_MAX, le=TRANSLATE_MAX, allow_inf_nan=False,
                                         description=f"StyleGAN3 networks only (/api/info `movable`): move the "
                                                     f"image by this many image widths (x right, y down), in "
                                                     f"[-{TRANSLATE_MAX:g}, {TRANSLATE_MAX:g}].")],
        Rotate=Annotated[float, Query(ge=-ROTATE_MAX, le=ROTATE_MAX, allow_inf_nan=False,
                                      description=f"StyleGAN3 networks only (/api/info `movable`): rotate the "
                                                  f"image by this many degrees counterclockwise, in "
                                                  f"[-{ROTATE_MAX:g}, {ROTATE_MAX:g}].")],
        V=Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$",
                                      description="Cache key, not used to compute: the page passes the model id so "
                                                  "that browser caches never mix the images of two networks.")],
    )


def check_class(c_dim: int, class_idx: int | None) -> int | None:
    """The class to draw: required for a conditional network (the one rule of every interface: nothing picks
    a class), refused for an unconditional one."""
    if c_dim == 0 and class_idx is not None:
        raise ApiError(422, "invalid_parameter", "class: this network is unconditional; do not give a class")
    if c_dim > 0 and class_idx is None:
        raise ApiError(422, "invalid_parameter", f"class: this network is conditional ({c_dim} classes); give "
                                                 f"class in [0, {c_dim})")
    if c_dim > 0 and class_idx >= c_dim:
        raise ApiError(422, "invalid_parameter", f"class: must be in [0, {c_dim}), got {class_idx}")
    return class_idx


def check_trunc(c_dim: int, trunc: str | None) -> bool:
    """Whether to truncate towards the class's average: ``trunc=class`` (the default of a conditional network);
    refused for an unconditional one."""
    if c_dim == 0 and trunc == "class":
        raise ApiError(422, "invalid_parameter", "trunc: this network is unconditional; only `global` applies")
    return c_dim > 0 and trunc != "global"


def parse_edit(text: str | None, num_directions: int) -> tuple[float, ...]:
    """The ``edit`` amounts: at most ``num_directions`` finite numbers in [−EDIT_MAX, EDIT_MAX]; trailing
    zeros dropped, so that equal edits share one cache entry."""
    if not text:
        return ()
    try:
        amounts = [float(v) for v in text.split(",")]
    except ValueError:
        raise ApiError(422, "invalid_parameter", f"edit: comma-separated numbers expected, got {text[:40]!r}") from None
    if len(amounts) > num_directions:
        raise ApiError(422, "invalid_parameter",
                       f"edit: at most {num_directions} amounts for this network, got {len(amounts)}")
    if not all(math.isfinite(a) and abs(a) <= EDIT_MAX for a in amounts):
        raise ApiError(422, "invalid_parameter", f"edit: each amount must be finite, in [-{EDIT_MAX:g}, {EDIT_MAX:g}]")
    while amounts and amounts[-1] == 0:
        amounts.pop()
    return tuple(amounts)


def fmt_psi(psi: float) -> str:
    """ψ as written in a download's file name: at most two decimals, no trailing zeros."""
    return f"{psi:.2f}".rstrip("0").rstrip(".") if math.isfinite(psi) else "x"


# -- rendering ------------------------------------------------------------------------------------------------
def cache_headers(model_id: str, kind: str, params: dict,
                  synthesis: str = "eager") -> tuple[str | None, dict[str, str]]:
    """The ETag (``None`` for ``random`` noise) and caching headers of one image request; ``synthesis`` other
    than ``eager`` is part of the ETag (its pixels may differ from eager's by a level)."""
    if params.get("noise") == "random":
        return None, {"Cache-Control": "no-store"}
    key = json.dumps({"kind": kind, "model": model_id, **params, **({"synthesis": synthesis}
                                                                    if synthesis != "eager" else {})},
                     sort_keys=True)
    etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
    return etag, {"Cache-Control": f"public, max-age={CACHE_MAX_AGE}", "ETag": etag}


def not_modified(request: Request, etag: str) -> bool:
    """Whether the request's If-None-Match names ``etag`` (or is ``*``)."""
    inm = request.headers.get("if-none-match", "")
    return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"


async def compute_png(worker: InferenceWorker, kind: str, fn, *args) -> bytes:
    """``fn(*args)`` run on the inference worker, its failures turned into :class:`ApiError` (busy, shutting
    down, invalid parameter, internal)."""
    try:
        fut = worker.submit(fn, *args)
    except QueueFull:
        raise ApiError(503, "busy", f"The server is busy: {worker.max_queue} requests are already waiting "
                                    "for the network. Try again in a moment.", {"Retry-After": "1"}) from None
    except WorkerStopped as e:
        raise ApiError(503, "shutting_down", str(e), {"Retry-After": "5"}) from None
    try:
        return await asyncio.wrap_future(fut)
    except ValueError as e:
        raise ApiError(422, "invalid_parameter", str(e)) from None
    except Exception as e:  # noqa: BLE001 - reported, the server keeps serving
        log.exception("rendering %s failed", kind)
        raise ApiError(500, "internal", f"rendering failed ({type(e).__name__}); see the server log") from None


async def render_png(state: ServeState, request: Request, kind: str, params: dict, filename: str,
                     fn, *args) -> Response:
    """The PNG response of one image request: 304 when the client's copy is current, else computed."""
    etag, cache = cache_headers(state.model_id, kind, params, state.renderer.synthesis)
    if etag is not None and not_modified(request, etag):
        return Response(status_code=304, headers=cache)
    png = await compute_png(state.worker, kind, fn, *args)
    headers = dict(cache)
    headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return Response(content=png, media_type="image/png", headers=headers)


# -- the application ------------------------------------------------------------------------------------------
PNG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "A PNG image."},
    304: {"description": "Not modified (the ETag given in If-None-Match matches)."},
    422: {"model": ErrorBody, "description": "A parameter is missing, malformed or out of range."},
    503: {"model": ErrorBody, "description": "The queue is full; retry after `Retry-After` seconds."},
}


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error as an :class:`ErrorBody`: invalid parameters, :class:`ApiError`, and HTTP errors."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        detail = [_describe(e) for e in exc.errors()]
        msg = "; ".join(f"{d['parameter']}: {d['message']}" for d in detail)
        return _error(422, "invalid_parameter", msg, detail)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.error, exc.message, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))


def add_image_routes(app: FastAPI, state: ServeState) -> None:
    """The PNG endpoints: ``/api/image``, ``/api/mix`` and ``/api/interp``."""
    q = query_types(state.num_ws, state.c_dim, state.max_steps)
    c_dim, name, renderer = state.c_dim, state.name, state.renderer
    moves = MOVE_PARAMS if renderer.movable else ()

    @app.get("/api/image", tags=["images"], response_class=Response, responses=PNG_RESPONSES,
             dependencies=[only_params(c_dim, "seed", "psi", "noise", "class", "edit", "trunc", *moves)],
             summary="One image from a seed")
    async def api_image(request: Request, seed: q.Seed, psi: q.Psi = 1.0, noise: q.Noise = "const",
                        class_idx: q.Class = None, trunc: q.Trunc = None, edit: q.Edit = None,
                        translate_x: q.Translate = 0.0, translate_y: q.Translate = 0.0, rotate: q.Rotate = 0.0,
                        v: q.V = None) -> Response:
        """The image of `seed` at truncation `psi`, as a PNG of the network's size; `edit` moves its w along
        the network's latent directions; a StyleGAN3 network's image is translated and rotated by
        `translate_x`, `translate_y` and `rotate`."""
        class_idx, to_class = check_class(c_dim, class_idx), check_trunc(c_dim, trunc)
        amounts = parse_edit(edit, state.info.directions)
        params = {"seed": seed, "psi": psi, "noise": noise, "class": class_idx, "trunc": to_class}
        if amounts:
            params["edit"] = list(amounts)
        translate = (translate_x + 0.0, translate_y + 0.0)  # -0.0 is 0.0: one cache entry, one file name
        if any(translate) or rotate:
            params["move"] = [*translate, rotate + 0.0]
        filename = (f"{name}-seed{seed}-psi{fmt_psi(psi)}" + ("-edited" if amounts else "")
                    + ("-moved" if "move" in params else "") + ".png")
        return await render_png(state, request, "image", params, filename, renderer.image, seed, psi, noise,
                                class_idx, amounts, to_class, translate, rotate)

    @app.get("/api/mix", tags=["images"], response_class=Response, responses=PNG_RESPONSES,
             dependencies=[only_params(c_dim, "seed_a", "seed_b", "crossover", "psi", "noise", "class", "trunc")],
             summary="Style mixing of two seeds")
    async def api_mix(request: Request, seed_a: q.SeedA, seed_b: q.SeedB, crossover: q.Crossover = state.num_ws // 2,
                      psi: q.Psi = 1.0, noise: q.Noise = "const", class_idx: q.Class = None,
                      trunc: q.Trunc = None, v: q.V = None) -> Response:
        """Styles [0, crossover) of `seed_a`, the rest of `seed_b`: crossover 0 gives B, num_ws gives A."""
        class_idx, to_class = check_class(c_dim, class_idx), check_trunc(c_dim, trunc)
        params = {"seed_a": seed_a, "seed_b": seed_b, "crossover": crossover, "psi": psi, "noise": noise,
                  "class": class_idx, "trunc": to_class}
        return await render_png(state, request, "mix", params, f"{name}-mix{seed_a}-{seed_b}-x{crossover}.png",
                                renderer.mix, seed_a, seed_b, crossover, psi, noise, class_idx, to_class)

    @app.get("/api/interp", tags=["images"], response_class=Response, responses=PNG_RESPONSES,
             dependencies=[only_params(c_dim, "seed_a", "seed_b", "steps", "psi", "noise", "class", "trunc")],
             summary="Interpolation strip between two seeds")
    async def api_interp(request: Request, seed_a: q.SeedA, seed_b: q.SeedB, steps: q.Steps = min(8, state.max_steps),
                         psi: q.Psi = 1.0, noise: q.Noise = "const", class_idx: q.Class = None,
                         trunc: q.Trunc = None, v: q.V = None) -> Response:
        """`steps` images from `seed_a` to `seed_b` (linear in W), side by side: a PNG of
        (steps × resolution) × resolution pixels."""
        class_idx, to_class = check_class(c_dim, class_idx), check_trunc(c_dim, trunc)
        params = {"seed_a": seed_a, "seed_b": seed_b, "steps": steps, "psi": psi, "noise": noise,
                  "class": class_idx, "trunc": to_class}
        return await render_png(state, request, "interp", params, f"{name}-interp{seed_a}-{seed_b}.png",
                                renderer.interp, seed_a, seed_b, steps, psi, noise, class_idx, to_class)


def add_service_routes(app: FastAPI, state: ServeState) -> None:
    """The JSON endpoints about the service (``/api/info``, ``/api/health``), the page and its static files."""

    @app.get("/api/info", tags=["service"], response_model=Info, dependencies=[only_params(state.c_dim)],
             summary="The served network and the limits")
    async def api_info() -> Info:
        """Resolution, channels, number of style inputs, conditioning, model name and card, limits."""
        return state.info

    @app.get("/api/health", tags=["service"], response_model=Health, dependencies=[only_params(state.c_dim)],
             summary="Queue and worker state")
    async def api_health() -> Response:
        """Whether the worker runs, and its queue."""
        s = state.worker.stats()
        return JSONResponse({"status": "ok", **s}, headers={"Cache-Control": "no-store"})

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response(state.index_html, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/static/{filename}", include_in_schema=False)
    async def static_file(filename: str) -> Response:
        entry = state.static.get(filename)  # a dict look-up: the name never reaches the file system
        if entry is None:
            raise ApiError(404, "not_found", "no such static file")
        return Response(entry[0], media_type=entry[1], headers={"Cache-Control": "no-cache"})


def new_app(state: ServeState, allowed_hosts: list[str] | None) -> FastAPI:
    """The bare application: the worker started and stopped with it, the middleware, no routes yet."""
    worker = state.worker

    @asynccontextmanager
    async def lifespan(app):
        worker.start()
        yield
        worker.stop()

    app = FastAPI(
        title=state.title,
        version=_version(),
        description=state.description(),
        docs_url=None, redoc_url=None,  # their pages load scripts from a CDN; /openapi.json is the schema
        lifespan=lifespan,
    )
    app.state.worker, app.state.renderer, app.state.info = worker, state.renderer, state.info
    app.add_middleware(_UriTooLong)  # innermost: its 414 gets the headers of every answer
    app.add_middleware(_Headers)
    app.add_middleware(_HeadAsGet)
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    return app


def create_app(
    G,
    *,
    name: str = "network",
    title: str = "This Image Does Not Exist",
    card: str | None = None,
    max_queue: int = 16,
    max_steps: int = 16,
    default_psi: float = 0.7,
    sliders: int = SLIDERS,
    model_id: str | None = None,
    allowed_hosts: list[str] | None = None,
    worker: InferenceWorker | None = None,
    synthesis: str = "eager",
) -> FastAPI:
    """The application serving generator ``G`` (eval mode, no grads; see :func:`stylegan.load`).

    ``max_queue`` bounds the requests waiting for the network (more get 503); ``max_steps`` bounds the
    interpolation strip; ``sliders``: latent directions offered for edits (SeFa, computed here, once); ``allowed_hosts`` (e.g. ``["127.0.0.1", "localhost"]``) refuses other Host headers
    (against DNS rebinding when bound to loopback); ``synthesis``: ``eager``, ``compiled`` or
    ``onnx`` (:data:`stylegan.serve.render.SYNTHESIS_PATHS`; built here, once, falling back to eager with a
    one-line warning where it cannot be used)."""
    if max_steps < 2:
        raise ValueError("max_steps must be at least 2")
    if not (PSI_MIN <= default_psi <= PSI_MAX):
        raise ValueError(f"default_psi must be in [{PSI_MIN}, {PSI_MAX}]")
    state = ServeState(G, name=name, title=title, card=card, max_queue=max_queue, max_steps=max_steps,
                       default_psi=default_psi, model_id=model_id, worker=worker, sliders=sliders,
                       synthesis=synthesis)
    app = new_app(state, allowed_hosts)
    add_error_handlers(app)
    add_image_routes(app, state)
    add_service_routes(app, state)
    return app


def _version() -> str:
    from stylegan.version import __version__

    return __version__
