"""An opt-in Prometheus endpoint named by Prometheus's conventions: the latest sample, rule averages and levels.

Imports ``model``, ``rules`` and prometheus_client (an optional extra); never Qt. Bound to 127.0.0.1 by default.
"""

# Conventions, decided once (README "Prometheus"): one metric name per quantity, with its unit as a
# suffix; shares are ratios from 0 to 1 (``_ratio``), never percent; temperatures ``_celsius``, power
# ``_watts``, durations ``_seconds``, rates ``_bytes_per_second``, fans ``_rpm``. GPU series carry ``gpu`` (the index), ``name`` and ``uuid``
# labels as dcgm-exporter's do. Each scrape is built from the last tick only (a custom collector), so
# a series that stops being true (a GPU gone, a rule deleted, a value not readable) disappears
# instead of repeating its last value.

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from typing import Any

from trayapp import __version__
from trayapp.model import BASE_COLUMNS, GPU_METRICS, MACHINE_COLUMNS, METRICS, Level, metric_unit
from trayapp.rules import format_duration

LEVEL_VALUES = {Level.UNKNOWN: -1, Level.OK: 0, Level.ORANGE: 1, Level.RED: 2}

_GPU_LABELS = ["gpu", "name", "uuid"]
_RULE_LABELS = ["metric", "window"]
_LEVEL_HELP = "-1 unknown (not enough data), 0 ok, 1 orange, 2 red"


# The unit suffix of a Prometheus series by the unit people read (MetricInfo.unit), and what the
# stored value is divided by: percentages are exported as ratios.
PROMETHEUS_UNITS = {"°C": ("celsius", 1.0), "W": ("watts", 1.0), "B/s": ("bytes_per_second", 1.0), "RPM": ("rpm", 1.0),
                    "": ("ratio", 1.0), "%": ("ratio", 100.0)}


def unit_of(column: str) -> tuple[str, float]:
    """The Prometheus unit suffix of a dataset column (or a GPU field), and what its stored value is divided by."""
    info = GPU_METRICS.get(column)
    return PROMETHEUS_UNITS[info.unit if info is not None else metric_unit(column)]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class TickCollector:
    """Yields the series of the last tick handed to ``update``, and nothing else."""

    def __init__(self) -> None:
        self._tick: Any = None  # replaced whole on each tick; reading one reference needs no lock

    def update(self, tick: Any) -> None:
        self._tick = tick

    def describe(self) -> list[Any]:
        return []  # the series change with each tick; registering must not call collect()

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        info = GaugeMetricFamily("trayapp_build_info", "trayapp's version; always 1", labels=["version"])
        info.add_metric([__version__], 1.0)
        yield info
        tick = self._tick
        if tick is None:
            return
        yield from self._samples(tick, GaugeMetricFamily)
        yield from self._rules(tick, GaugeMetricFamily)

    def _samples(self, tick: Any, family: Any) -> Iterator[Any]:
        sample = tick.sample
        stamp = family("trayapp_last_sample_timestamp_seconds", "When the last sample was taken (Unix time)")
        stamp.add_metric([], sample.timestamp.timestamp())
        yield stamp
        for column in (*BASE_COLUMNS, *MACHINE_COLUMNS):
            value = _number(getattr(sample, column, None))
            if value is not None:
                info = METRICS[column]
                gauge = family(info.prometheus, info.help)
                gauge.add_metric([], value / unit_of(column)[1])
                yield gauge
        for field, info in GPU_METRICS.items():
            gauge = family(info.prometheus, info.help, labels=_GPU_LABELS)
            divisor = unit_of(field)[1]
            for gpu in sample.gpus:
                value = _number(getattr(gpu, field, None))
                if value is not None:
                    gauge.add_metric([str(gpu.index), gpu.name or "", gpu.uuid or ""], value / divisor)
            if gauge.samples:
                yield gauge

    def _rules(self, tick: Any, family: Any) -> Iterator[Any]:
        averages: dict[str, Any] = {}
        thresholds: dict[str, Any] = {}
        coverage = family("trayapp_rule_coverage_seconds", "Time the samples in a rule's window span", labels=_RULE_LABELS)
        samples = family("trayapp_rule_samples", "Samples in a rule's window", labels=_RULE_LABELS)
        level = family("trayapp_rule_level", "A rule's alert level: " + _LEVEL_HELP, labels=_RULE_LABELS)
        state = family("trayapp_rule_state", "1 for a rule's current alert level, 0 for the others", labels=[*_RULE_LABELS, "state"])
        seen: list[tuple[str, str]] = []
        for result in tick.results:
            window = format_duration(result.window_seconds)
            key, n = (result.metric, window), 2
            while key in seen:  # two rules on the same metric and window: as rule keys do, "#2"
                key, n = (result.metric, f"{window}#{n}"), n + 1
            seen.append(key)
            labels = list(key)
            unit, divisor = unit_of(result.metric)
            average = _number(result.average)
            if average is not None:
                averages.setdefault(unit, family(f"trayapp_rule_average_{unit}", "A rule's average over its window",
                                                 labels=_RULE_LABELS)).add_metric(labels, average / divisor)
            limits = thresholds.setdefault(unit, family(
                f"trayapp_rule_threshold_{unit}",
                "A rule's thresholds: orange from, red past; direction above (the average rising) or below (falling)",
                labels=[*_RULE_LABELS, "level", "direction"]))
            limits.add_metric([*labels, "orange", result.direction], result.orange / divisor)
            limits.add_metric([*labels, "red", result.direction], result.red / divisor)
            coverage.add_metric(labels, result.coverage_seconds)
            samples.add_metric(labels, float(result.samples))
            level.add_metric(labels, LEVEL_VALUES[result.level])
            for candidate in Level:
                state.add_metric([*labels, candidate.value], 1.0 if candidate is result.level else 0.0)
        yield from averages.values()
        yield from thresholds.values()
        for metric in (coverage, samples, level, state):
            if metric.samples:
                yield metric
        overall = family("trayapp_level", "The worst rule level, as the tray icon shows it: " + _LEVEL_HELP)
        overall.add_metric([], LEVEL_VALUES[tick.level])
        yield overall


class Exporter:
    """Serves /metrics; ``on_tick`` keeps a reference to the tick (no I/O, no lock)."""

    def __init__(self, address: str = "127.0.0.1", port: int = 9101) -> None:
        from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, make_wsgi_app

        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes, …
        PlatformCollector(registry=self.registry)  # python_info
        self.collector = TickCollector()
        self.registry.register(self.collector)
        self.server = BoundedServer(address, port, make_wsgi_app(self.registry))
        self.thread = self.server.thread
        self.port = self.server.server_address[1]

    def on_tick(self, tick: Any) -> None:
        self.collector.update(tick)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BoundedServer:
    """An HTTP server for /metrics whose threads stay few whatever its clients do.

    prometheus_client's own server starts a thread per connection, with no timeout: every idle
    or half-open connection keeps one for good. Here one thread accepts and watches connections
    that have not sent a request yet (no thread each; closed after ``IDLE_S``, the oldest first
    beyond ``WAITING_MAX``), and only a connection with bytes to read goes to one of ``WORKERS``
    threads, whose reads and writes time out after ``IDLE_S``. A scrape sends its request at
    once, so it is answered while hundreds of idle connections wait."""

    IDLE_S = 3.0
    WORKERS = 4
    WAITING_MAX = 256

    def __init__(self, address: str, port: int, app: Any) -> None:
        import selectors
        import threading
        from concurrent.futures import ThreadPoolExecutor
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        server_class = type("MetricsWSGIServer", (WSGIServer,), {"address_family": family})
        self.httpd = make_server(address, port, app, server_class, Quiet)
        self.httpd.socket.setblocking(False)
        self.server_address = self.httpd.server_address
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.httpd.socket, selectors.EVENT_READ)
        self._waiting: dict[Any, float] = {}  # connection -> when it came, oldest first
        self._pool = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="metrics")
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="metrics-accept", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import time

        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.5):
                if key.fileobj is self.httpd.socket:
                    self._accept()
                else:
                    conn = key.fileobj
                    self._selector.unregister(conn)
                    self._waiting.pop(conn, None)
                    self._pool.submit(self._answer, conn)
            now = time.monotonic()
            while self._waiting and (len(self._waiting) > self.WAITING_MAX or now - next(iter(self._waiting.values())) > self.IDLE_S):
                self._drop(next(iter(self._waiting)))
        for conn in list(self._waiting):
            self._drop(conn)

    def _accept(self) -> None:
        import selectors
        import time

        for _ in range(64):  # a burst: take what is there, then look at the rest again
            try:
                conn, _ = self.httpd.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of file descriptors, a reset before accept: the next one may do
                return
            conn.setblocking(False)
            self._waiting[conn] = time.monotonic()
            self._selector.register(conn, selectors.EVENT_READ)

    def _drop(self, conn: Any) -> None:
        self._waiting.pop(conn, None)
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _answer(self, conn: Any) -> None:
        try:
            conn.settimeout(self.IDLE_S)
            self.httpd.finish_request(conn, conn.getpeername())
        except Exception:  # noqa: BLE001 - a client that went away or sent nonsense: its own loss
            pass
        finally:
            self.httpd.shutdown_request(conn)

    def shutdown(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def server_close(self) -> None:
        self._selector.close()
        self.httpd.server_close()
