"""The real-time layer's Prometheus metrics (prometheus-client), and the registry ``/metrics`` serves.

The registry lives here, on the lowest floor that has metrics, so that ``server`` adds its own to it
without ``channels`` importing ``server``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

SOCKETS_OPEN = Gauge("corkboard_sockets_open", "Open WebSocket connections", registry=REGISTRY)
SOCKET_JOINS = Counter("corkboard_socket_joins_total", "Channel joins", ["kind", "status"], registry=REGISTRY)
MESSAGES_IN = Counter("corkboard_socket_messages_in_total", "Frames received from sockets", registry=REGISTRY)
MESSAGES_OUT = Counter("corkboard_socket_messages_out_total", "Frames written to sockets", registry=REGISTRY)
FANOUT_LATENCY = Histogram(
    "corkboard_fanout_seconds",
    "From commit to the frame written to every local socket",
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
)
FANOUT_WRITES = Counter(
    "corkboard_fanout_writes_total",
    "Socket writes of the event fan-out (each carries every event frame the socket was missing)",
    registry=REGISTRY,
)
FANOUT_FRAMES = Counter(
    "corkboard_fanout_frames_total",
    "Event frames the fan-out wrote (over writes: how many events a write carried on average)",
    registry=REGISTRY,
)
BROKER_LAG = Histogram(
    "corkboard_broker_lag_seconds",
    "From publish to receipt from the broker",
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5),
)
BROKER_CONNECTED = Gauge(
    "corkboard_broker_connected",
    "1 while this process receives from the broker (revocations reach it), else 0",
    registry=REGISTRY,
)
SLOW_CONSUMERS = Counter(
    "corkboard_slow_consumers_dropped_total",
    "Sockets closed because they could not keep up",
    registry=REGISTRY,
)
