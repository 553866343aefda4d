"""The loop around the ranking: what was shown and what customers did (``events``), what that teaches
(``learning``), and who must not be asked again too soon (``fatigue``), kept current off the request's path.

A request reads the current arrays and notes what it served; a background thread per serving process (started on
the first request: threads do not survive the fork of a pre-forking server) writes those notes every second,
learns from new events and rebuilds fatigue when activations change. ``sync`` does the same at once (the CLI, the
replay and tests call it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from matcher.catalogue import Catalogue
from matcher.events import EventLog
from matcher.fatigue import Fatigue
from matcher.learning import Engagement
from matcher.store import Store

logger = logging.getLogger(__name__)
EVERY_S = 1.0  # how often the background thread writes notes and learns


class Loop:
    def __init__(self, store: Store, catalogue: Catalogue, config: dict[str, Any], rules: dict[str, Any], moments):
        self.config = config["engagement"]
        self.events = EventLog(store, moments)
        self.engagement = Engagement(store, catalogue, self.config, list(moments))
        self.fatigue = Fatigue(store, catalogue, rules)
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()

    @property
    def version(self) -> tuple[int, Any]:
        """Changes whenever what the loop adds to a score may have: answers cached under another are stale."""
        return self.engagement.version, self.fatigue.state

    def sync(self, settled_before: float | None = None) -> None:
        """Write the served notes, learn from every stored event (received before ``settled_before``), rebuild
        fatigue if activations changed."""
        self.events.flush()
        self.engagement.catch_up(settled_before)
        self.fatigue.refresh()

    def ensure_running(self) -> None:
        """Start this process's background thread if it is not running (cheap: called by every request)."""
        if self._pid == os.getpid() and self._thread is not None:
            return
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="relais-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=5)
        self._thread = None
        try:
            self.events.flush()
        except Exception:  # noqa: BLE001 (stopping: nothing to report it to but the log)
            logger.exception("could not write the last served notes")

    def _run(self) -> None:
        while not self._stop.wait(EVERY_S):
            try:
                # An event is learned from once what served it has surely been written (by any process).
                self.sync(settled_before=time.time() - self.config["settle_seconds"])
            except Exception:  # noqa: BLE001 (the loop must outlive a locked or full database)
                logger.exception("the loop could not catch up; retrying")
