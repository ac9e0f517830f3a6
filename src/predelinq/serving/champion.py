"""The champion as each API worker serves it, reloaded without a restart.

A background thread asks the database every ``reload_seconds`` which version is champion.
When it changed (a retrain, promote or rollback from any process), the new artifact is
loaded and verified against its sha256, then swapped in with one reference assignment:
a request that already took the old model finishes with it, the next one gets the new.
When the champion cannot be loaded (its artifact is missing or fails verification, or its
features changed), the worker keeps the model it has, logs why once, and
``unavailable_reason`` names the version and the fix for a worker that has none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.errors import RegistryError
from predelinq.features.declarations import FeatureMismatchError, FeatureSet
from predelinq.modeling.artifacts import ArtifactError
from predelinq.modeling.registry import Champion, current_champion, load_champion
from predelinq.serving.score import for_serving

log = logging.getLogger(__name__)


class ChampionCache:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        features: FeatureSet,
        on_swap: Callable[[str], None] = lambda version: None,
    ):
        self.engine, self.settings, self.on_swap = engine, settings, on_swap
        self.features = features
        self.current: Champion | None = None
        self.problem: str | None = None  # why the champion in the database is not served
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load the champion if it changed; True if the served model changed."""
        with self.engine.connect() as connection:
            version = current_champion(connection)
            if version is None or (self.current and self.current.version == version):
                self.problem = None
                return False
        try:
            champion = load_champion(self.engine, self.settings.model_dir, self.features)
        except (ArtifactError, FeatureMismatchError) as error:
            self._cannot_serve(str(error))
            return False
        except (OSError, RegistryError) as error:
            self._cannot_serve(f"the champion {version} cannot be loaded: {error}")
            return False
        if champion is None:
            return False
        self.problem = None
        self.current = for_serving(champion, self.settings)
        self.on_swap(champion.version)
        log.info("model loaded", extra={"fields": {"model_version": champion.version}})
        return True

    def _cannot_serve(self, problem: str) -> None:
        if problem != self.problem:  # once per problem, not at every poll
            log.error("cannot load the champion: %s", problem)
        self.problem = problem

    def unavailable_reason(self) -> str:
        """Why no model is served: the champion's problem, or that there is none yet."""
        return self.problem or "no champion model yet: run a retrain first"

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="champion-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.reload_seconds):
            try:
                self.refresh()
            except Exception:  # keep serving the model we have; say why in the log
                log.exception("champion reload failed")
