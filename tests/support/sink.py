"""Record what an app's real sink (the hub) is handed, while it still hands everything on."""

from __future__ import annotations

from typing import Any

import pytest

from persistence.events import RecordingSink


def tee_sink(app: Any, monkeypatch: pytest.MonkeyPatch) -> RecordingSink:
    hub = app.state.hub.sink
    recorded = RecordingSink()
    publish_events, publish_control = hub.publish_events, hub.publish_control

    def tee_events(events: Any) -> None:
        recorded.publish_events(events)
        publish_events(events)

    def tee_control(message: Any) -> None:
        recorded.publish_control(message)
        publish_control(message)

    monkeypatch.setattr(hub, "publish_events", tee_events)
    monkeypatch.setattr(hub, "publish_control", tee_control)
    return recorded
