"""SimulatorServer: the carrier plus its REST peer, served threaded by werkzeug in a background thread."""
from __future__ import annotations

import logging
import threading

from werkzeug.serving import BaseWSGIServer, make_server

from simulator.carrier import Carrier, CarrierConfig
from simulator.rest import create_app
from simulator.spec import SpecValidator

log = logging.getLogger(__name__)

_validator_lock = threading.Lock()
_validator: SpecValidator | None = None


def shared_validator() -> SpecValidator:
    """Build the OpenAPI validator once per process (the spec is big)."""
    global _validator
    with _validator_lock:
        if _validator is None:
            _validator = SpecValidator()
        return _validator


class SimulatorServer:
    """Runs a Carrier and its Flask REST peer on host:port (port 0 picks a free port)."""

    def __init__(self, config: CarrierConfig, host: str = "127.0.0.1", port: int = 0,
                 validator: SpecValidator | None = None) -> None:
        self.carrier = Carrier(config)
        self.app = create_app(self.carrier, validator or shared_validator())
        self._host, self._port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        return self._server.server_port if self._server else self._port

    @property
    def url(self) -> str:
        """Base URL of the REST peer, e.g. http://127.0.0.1:5055."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> "SimulatorServer":
        """Bind, start the carrier and serve in a background thread."""
        self._server = make_server(self._host, self._port, self.app, threaded=True)
        self.carrier.start()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="sim-rest", daemon=True)
        self._thread.start()
        log.info("carrier simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, stop the carrier, join threads."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.carrier.stop()

    def place_inbound_call(self, from_: str, to: str, talk_seconds: float | None = None,
                           patience_seconds: float | None = None, digits: str | list[str] | None = None) -> str:
        """A simulated caller dials the hub; returns the CallSid."""
        return self.carrier.place_inbound_call(from_, to, talk_seconds=talk_seconds,
                                               patience_seconds=patience_seconds, digits=digits)

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
