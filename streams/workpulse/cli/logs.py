"""Logging set-up shared by the verbs that run the pipeline."""

from __future__ import annotations

import logging
from pathlib import Path


def setup_logging(level: str, file: Path | None = None) -> None:
    """Log to stderr, or to `file` (the demo keeps the terminal for its live view)."""
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        filename=file,
    )
    # Faust and aiokafka are chatty at INFO; keep them to warnings unless asked.
    if level.upper() != "DEBUG":
        for name in ("faust", "mode", "aiokafka"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
        # kafka-python serves only calls whose failures workpulse reports itself (topic
        # creation and configs at start, the report check's offset lookups); its own
        # lines were four per retry while a broker did not answer (~20 before ours).
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
