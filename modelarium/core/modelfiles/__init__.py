"""Ollama Modelfiles: parse, write, validate, and split into reusable elements.

Everything here follows what Ollama's own code does (``parser.ParseFile``, ``Modelfile.String``,
``api.FormatParams``, the server's template check), so a Modelfile we accept is one
``ollama create`` accepts, and the problems we report are the ones it would hit.
"""

from modelarium.core.modelfiles.elements import Elements, compose, split_elements
from modelarium.core.modelfiles.errors import (
    ModelfileParseError,
    ModelfileWriteError,
    ParameterError,
)
from modelarium.core.modelfiles.model import Command, Message, Modelfile
from modelarium.core.modelfiles.parameters import PARAMETERS, ParameterSpec, ParamType
from modelarium.core.modelfiles.parser import parse
from modelarium.core.modelfiles.template import TemplateReport, check_template
from modelarium.core.modelfiles.validate import Problem, validate
from modelarium.core.modelfiles.writer import write

__all__ = [
    "PARAMETERS",
    "Command",
    "Elements",
    "Message",
    "Modelfile",
    "ModelfileParseError",
    "ModelfileWriteError",
    "ParamType",
    "ParameterError",
    "ParameterSpec",
    "Problem",
    "TemplateReport",
    "check_template",
    "compose",
    "parse",
    "split_elements",
    "validate",
    "write",
]
