"""Structured JSON logs (structlog) with a request id bound to every line of a request."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Credentials that can reach a log line: a token in a URL's query (the socket's ``?token=``, links
# with ``token=``) and a bearer header echoed in a message.
_SECRET = re.compile(
    r"((?:[?&;]|\b)(?:token|access_token|refresh_token|authToken)=)[^&\s\"']+"
    r"|(\bBearer\s+)[A-Za-z0-9._~+/=-]+",
    re.IGNORECASE,
)


def _redact_text(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", text)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every string value of a log line (uvicorn's lines included, whose
    ``event`` is their formatted message) has its tokens replaced by ``[redacted]``."""
    for key, value in event_dict.items():
        if isinstance(value, str) and ("=" in value or "earer" in value):
            event_dict[key] = _redact_text(value)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Route the standard library's loggers (uvicorn, sqlalchemy, alembic) through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs requests, with their id
