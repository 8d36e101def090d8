"""``core.modelfiles``: the Modelfile library and the Ollama operations, wired for one core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelarium.core.modelfiles.library import ModelfileLibrary
from modelarium.core.modelfiles.ollama_ops import OllamaOps

if TYPE_CHECKING:
    from modelarium.core.app import Core


class ModelfileService:
    def __init__(self, core: Core) -> None:
        self.library = ModelfileLibrary(core.db, core.clock)
        self.ollama = OllamaOps(core, self.library)
