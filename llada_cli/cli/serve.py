"""`llada serve RUN [RUN ...]`: an OpenAI-compatible HTTP server over runs (docs/serve.md)."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from ..engine.errors import LladaError, UsageError
from .common import cli_errors, complete_run_name, err, globals_of
from .options import Given, with_configs
from .sample import WEIGHTS_GROUP

EXTRA = "llada serve needs its extra: pip install 'llada-cli[serve]' (FastAPI and uvicorn)"


@cli_errors
@with_configs(weights=WEIGHTS_GROUP)
def serve(
    ctx: typer.Context,
    runs: Annotated[
        list[str],
        typer.Argument(help="Runs to serve (name, name@step, folder).", autocompletion=complete_run_name),
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on (another than localhost opens it to the network).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one, printed).", min=0, max=65535)] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="LLADA_API_KEY", help="Require Authorization: Bearer KEY on every request."),
    ] = None,
    max_batch: Annotated[
        int, typer.Option(help="Requests to one run decoded together at most.", min=1, max=1024)
    ] = 8,
    batch_window_ms: Annotated[
        float,
        typer.Option(
            help="How long a lone request waits for others to join its batch (0: those that arrive "
            "while a batch decodes form the next one).",
            min=0,
            max=60_000,
        ),
    ] = 0.0,
    *,
    weights: Given,
) -> None:
    """Serve runs over HTTP with the OpenAI API (/v1/models, /v1/chat/completions, /v1/completions),
    streaming and dynamic batching included."""
    try:
        import uvicorn

        from ..server.app import create_app
    except ImportError:
        raise LladaError(EXTRA) from None
    from .. import api  # loads torch: here, not at the top, so --help stays quick

    if api_key is not None and not api_key.strip():
        raise UsageError("--api-key is empty: give a key, or drop it")
    g = globals_of(ctx)
    models = {}
    for spec in runs:
        model = api.load(spec, device=g.device, home=g.home, ema=weights.build().ema)
        if model.name in models:
            raise UsageError(f"run '{model.name}' is given twice")
        models[model.name] = model
    listener = bind(host, port)
    app = create_app(models, api_key, max_batch, batch_window_ms / 1000)
    where = listener.getsockname()
    if g.verbosity >= 0:
        err.print(
            f"serving {', '.join(models)} at http://{where[0]}:{where[1]}/v1", highlight=False, soft_wrap=True
        )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning" if g.verbosity <= 0 else "info"))
    server.run(sockets=[listener])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one clear line why not (the port taken, no such address)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # no Nagle delay on the connections it accepts (they inherit it): small responses would
        # otherwise wait for the client's delayed acknowledgement, about 40 ms each
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind((host, port))
        listener.listen(128)
    except (OSError, OverflowError) as problem:
        reason = getattr(problem, "strerror", None) or problem
        raise LladaError(f"cannot listen on {host}:{port}: {reason}") from None
    return listener
