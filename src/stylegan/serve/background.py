"""Run the service in a background thread of this process, on a loopback port (tests, notebooks, scripts)::

    with BackgroundServer(create_app(G)) as server:
        urllib.request.urlopen(server.url + "api/info")
"""
from __future__ import annotations

import threading
import time


class BackgroundServer:
    """uvicorn serving ``app`` on ``host:port`` (port 0: a free one) in a daemon thread, until ``stop()``."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 start_timeout: float = 30.0):
        import uvicorn

        from stylegan.serve.app import uvicorn_settings

        self.config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                                     lifespan="on", workers=1, **uvicorn_settings())
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="stylegan-serve", daemon=True)
        self.start_timeout = start_timeout
        self.host, self.port = host, port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread ended during start-up (port in use?)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("the server did not start in time")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
