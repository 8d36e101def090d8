"""Modelfile accessors resolve commands the way ``ollama create`` does."""

from __future__ import annotations

from modelarium.core.modelfiles import Command, Message, Modelfile, parse


def test_accessors_use_the_last_singleton_and_keep_lists_in_order() -> None:
    mf = parse(
        "FROM a\nFROM b\nSYSTEM one\nSYSTEM two\nTEMPLATE t\nADAPTER x\nADAPTER y\n"
        "LICENSE L1\nLICENSE L2\nREQUIRES 0.14\nDRAFT ./d\nRENDERER r\nPARSER p\n"
    )
    assert (mf.from_, mf.froms) == ("b", ["a", "b"])
    assert (mf.system, mf.template) == ("two", "t")
    assert (mf.adapters, mf.licenses) == (["x", "y"], ["L1", "L2"])
    assert (mf.requires, mf.draft, mf.renderer, mf.parser) == ("0.14", "./d", "r", "p")


def test_absent_elements_are_none_or_empty() -> None:
    mf = parse("FROM a\n")
    assert (mf.system, mf.template, mf.requires) == (None, None, None)
    assert (mf.adapters, mf.messages, mf.parameters) == ([], [], {})
    assert mf.parameter("temperature") is None


def test_parameters_named_like_commands_act_as_those_commands() -> None:
    """Ollama stores a PARAMETER's name as the command name, so these collide."""
    mf = parse("PARAMETER model base\nPARAMETER system hi\nPARAMETER message user: yo\n")
    assert mf.from_ == "base"
    assert mf.system == "hi"
    assert mf.messages == [Message("user", "yo")]
    assert mf.parameters == {}
    assert [c.line for c in mf.where("system")] == [2]


def test_equality_ignores_source_lines() -> None:
    assert Command("system", "x", 3) == Command("system", "x", 9)
    assert Modelfile([Command.from_("a", 1)]) == Modelfile([Command.from_("a")])
    assert hash(Command("system", "x", 3)) == hash(Command("system", "x"))


def test_ollama_names() -> None:
    assert Command.from_("a").ollama_name == "model"
    assert Command.parameter("temperature", "1").ollama_name == "temperature"
    assert Command.message("user", "hi").ollama_name == "message"
    assert len(Modelfile([Command.from_("a")])) == 1
