"""``core.modelfiles``: the Modelfile library and Ollama operations (endpoints through a port)."""

from __future__ import annotations

from modelarium.core.kernel import Kernel
from modelarium.core.modelfiles.ollama_ops import register as register_ollama
from modelarium.core.modelfiles.service import ModelfileService
from modelarium.core.ports import Ports


def build(kernel: Kernel, ports: Ports) -> ModelfileService:
    return ModelfileService(kernel, ports.endpoint_resolver)


def register(kernel: Kernel, service: ModelfileService, ports: Ports) -> None:
    register_ollama(kernel, service.ollama)
