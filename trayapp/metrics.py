"""An opt-in Prometheus endpoint: current samples and rule levels (prometheus_client).

Imports ``model`` and prometheus_client (an optional extra); never Qt. Bound to 127.0.0.1 by default.
"""

from __future__ import annotations

from typing import Any

from trayapp.model import Level

LEVEL_VALUES = {Level.UNKNOWN: -1, Level.OK: 0, Level.ORANGE: 1, Level.RED: 2}


class Exporter:
    """Serves /metrics; ``on_tick`` updates the gauges (a few dict writes, no I/O)."""

    def __init__(self, address: str = "127.0.0.1", port: int = 9101) -> None:
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        self.registry = CollectorRegistry()
        self.sample = Gauge("trayapp_sample", "The latest sample of each metric", ["metric"], registry=self.registry)
        self.average = Gauge("trayapp_rule_average", "A rule's window average", ["metric", "window"], registry=self.registry)
        self.coverage = Gauge("trayapp_rule_coverage_seconds", "Time a rule's window holds data for", ["metric", "window"], registry=self.registry)
        self.level = Gauge("trayapp_rule_level", "A rule's level: -1 unknown, 0 ok, 1 orange, 2 red", ["metric", "window"], registry=self.registry)
        self.overall = Gauge("trayapp_level", "The worst rule level: -1 unknown, 0 ok, 1 orange, 2 red", registry=self.registry)
        self.server, self.thread = start_http_server(port, addr=address, registry=self.registry)
        self.port = self.server.server_address[1]

    def on_tick(self, tick: Any) -> None:
        for name, value in tick.sample.values().items():
            if value is not None:
                self.sample.labels(name).set(value)
        for result in tick.results:
            window = f"{result.window_seconds:g}s"
            if result.average is not None:
                self.average.labels(result.metric, window).set(result.average)
            self.coverage.labels(result.metric, window).set(result.coverage_seconds)
            self.level.labels(result.metric, window).set(LEVEL_VALUES[result.level])
        self.overall.set(LEVEL_VALUES[tick.level])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
