"""``core.modelfiles``: the Modelfile library and the Ollama operations, wired for one core."""

from __future__ import annotations

from modelarium.core.kernel import Kernel
from modelarium.core.modelfiles.library import ModelfileLibrary
from modelarium.core.modelfiles.ollama_ops import OllamaOps, Resolver


class ModelfileService:
    def __init__(self, kernel: Kernel, resolver: Resolver) -> None:
        self.library = ModelfileLibrary(kernel.db, kernel.clock)
        self.ollama = OllamaOps(kernel.jobs, self.library, resolver)
