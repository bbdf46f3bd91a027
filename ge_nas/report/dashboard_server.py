"""``ge-nas dashboard --serve``: the dashboard on a local web server, redrawn as trials land.

The page is the one :func:`ge_nas.report.dashboard.dashboard_html` writes, told to poll. Every
couple of seconds it asks its own server for ``state.json`` (the study's version, cheap to
compute); when that changed it fetches ``dashboard.json`` and redraws the figures in place,
keeping zoom and the chosen cost. So a search running in another process (or on another
machine, with a shared database) shows up live without reloading anything.

The server binds to 127.0.0.1 by default and answers only requests addressed to the name it
serves under, so a web page elsewhere cannot read the study through DNS rebinding.

Example:
    >>> with DashboardServer(study, port=0) as server:  # doctest: +SKIP
    ...     print(server.url)  # open it in a browser
    ...     server.serve_forever()
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import optuna

from ge_nas.errors import InputError
from ge_nas.report.dashboard import contents_json, dashboard_contents, dashboard_html
from ge_nas.report.study_view import study_version

__all__ = ["DEFAULT_PORT", "DashboardServer"]

DEFAULT_PORT = 8050
# Addresses that listen on every interface: any Host header may then be legitimate.
_ANY_ADDRESS = ("", "0.0.0.0", "::")


class DashboardServer:
    """Serves one study's dashboard: ``/`` the page, ``/state.json`` its version, ``/dashboard.json`` its contents.

    ``port=0`` picks a free port (see :attr:`url`). Use :meth:`start` to serve from a
    background thread, or :meth:`serve_forever` to block; :meth:`close` (or leaving the
    ``with`` block) stops it.

    Raises:
        InputError: the address cannot be bound (say, the port is taken).
    """

    def __init__(
        self,
        study: optuna.Study,
        storage_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        refresh_seconds: float = 2.0,
    ) -> None:
        self.study = study
        self.storage_url = storage_url
        self.refresh_ms = max(1, round(refresh_seconds * 1000))
        # Several browser tabs may poll at once; one of them reads the study at a time.
        self._lock = threading.Lock()
        self._contents: tuple[str, str] | None = None  # (version, JSON) of the last contents made
        try:
            self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        except OSError as error:
            raise InputError(f"cannot serve on {host}:{port}: {error.strerror}; choose another --port") from None
        self._httpd.daemon_threads = True
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in _ANY_ADDRESS else self.host
        return f"http://{shown}:{self.port}/"

    def start(self) -> DashboardServer:
        """Serve from a background thread; return at once."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="ge-nas-dashboard", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C raises KeyboardInterrupt here)."""
        self._httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def page(self) -> str:
        with self._lock:
            return dashboard_html(self.study, self.storage_url, refresh_ms=self.refresh_ms)

    def state(self) -> str:
        with self._lock:
            return json.dumps({"version": study_version(self.study)})

    def contents(self) -> str:
        """The contents as JSON, made again only when the study changed since the last request."""
        with self._lock:
            version = study_version(self.study)
            if self._contents is None or self._contents[0] != version:
                contents = dashboard_contents(self.study, self.storage_url)
                self._contents = (contents["version"], contents_json(contents))
            return self._contents[1]

    def allows_host(self, host_header: str | None) -> bool:
        """Whether a request's Host header names this server (always, when it listens on every address)."""
        if self.host in _ANY_ADDRESS:
            return True
        names = {self.host, "localhost", "127.0.0.1", "[::1]"}
        return host_header in {f"{name}:{self.port}" for name in names}


def _handler_for(server: DashboardServer) -> type[BaseHTTPRequestHandler]:
    routes = {
        "/": (server.page, "text/html; charset=utf-8"),
        "/state.json": (server.state, "application/json"),
        "/dashboard.json": (server.contents, "application/json"),
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "ge-nas-dashboard"

        def do_GET(self) -> None:
            if not server.allows_host(self.headers.get("Host")):
                self.send_error(HTTPStatus.FORBIDDEN, "unknown Host: open the address ge-nas printed")
                return
            route = routes.get(urlsplit(self.path).path)
            if route is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            make, content_type = route
            body = make().encode("utf-8")
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Silent: the page polls every few seconds, which would flood the terminal."""

    return Handler
