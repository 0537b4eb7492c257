"""Run the sidecar: in the foreground (``actionstate serve``) or on a thread (tests, demo)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import uvicorn

from actionstate.service._errors import ServiceError
from actionstate.service.sidecar._app import create_app
from actionstate.service.sidecar._http_protocol import SidecarHttpProtocol
from actionstate.service.sidecar._runtime import Sidecar
from actionstate.service.sidecar._settings import SidecarSettings

__all__ = ["SidecarServer"]

_log = logging.getLogger("actionstate.service.server")


def _quiet(_line: str) -> None:
    pass


class SidecarServer:
    """The sidecar and its HTTP server, started and stopped together.

    ``SidecarServer(SidecarSettings(topic="orders", port=0)).start()`` returns the base
    URL (port 0 picks a free port); ``stop()`` stops the server, the view follower, the
    journal, and the local broker if the sidecar started one. ``run()`` serves in the
    foreground until interrupted.
    """

    def __init__(
        self, settings: SidecarSettings, *, progress: Callable[[str], None] = _quiet
    ) -> None:
        self.settings = settings
        self.sidecar = Sidecar(settings, progress=progress)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            create_app(self.sidecar),
            host=self.settings.host,
            port=self.settings.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            http=SidecarHttpProtocol.counting_into(self.sidecar.metrics.http_errors),
        )

    def start(self, timeout: float = 30.0) -> str:
        """Start on a thread; returns the base URL once the server accepts connections."""
        self.sidecar.start()
        server = uvicorn.Server(self._config())
        # Off the main thread uvicorn leaves the process's signal handlers alone.
        self._server = server
        self._thread = threading.Thread(target=server.run, name="actionstate-sidecar", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServiceError(
                    f"the sidecar's HTTP server did not start on "
                    f"{self.settings.host}:{self.settings.port} (is the port taken?)"
                )
            time.sleep(0.01)
        self.url = self._base_url(server)
        return self.url

    def run(self, on_started: Callable[[str], None] = _quiet) -> None:
        """Serve until SIGINT or SIGTERM, then stop everything and return.

        The server runs on a thread and the signals are handled here, so a stop always
        closes the journal and stops a local broker this sidecar started.
        """
        stop = threading.Event()

        def handle(_signum: int, _frame: object) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            url = self.start()
            on_started(url)
            while not stop.wait(0.2):
                if self._thread is None or not self._thread.is_alive():
                    raise ServiceError("the sidecar's HTTP server stopped on its own")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _base_url(self, server: uvicorn.Server) -> str:
        port = self.settings.port
        for srv in getattr(server, "servers", []):
            for sock in srv.sockets:
                port = sock.getsockname()[1]
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def stop(self) -> None:
        """Stop the server and the sidecar (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._server = None
        self.sidecar.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
