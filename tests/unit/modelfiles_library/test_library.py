"""The Modelfile library on both databases: revisions, elements, compose, usage, diff, rollback."""

from __future__ import annotations

import pytest

from modelarium.core.errors import ConflictError, NotFoundError, UsageError, ValidationError
from modelarium.core.modelfiles import ModelfileParseError, parse
from modelarium.core.modelfiles.library import (
    check_content,
    element_content,
    parse_ref,
    unified_diff,
)

BASIC = "FROM llama3.2\nSYSTEM You are terse.\nPARAMETER temperature 0.5\n"
TEMPLATE = "{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|end|>"


@pytest.fixture
def library(core):
    return core.modelfiles.library


def _element(library, kind, name, text=None, settings=(), author="U1"):
    content, _ = element_content(kind, text, settings)
    view, _ = library.save_element(kind, name, content, author=author)
    return view


# -- stored Modelfiles --------------------------------------------------------------------------


def test_saving_creates_numbered_draft_revisions(library, clock):
    first = library.save("assistant", BASIC, author="U1", message="first")
    clock.advance(60)
    second = library.save("assistant", BASIC.replace("0.5", "0.7"), author="U2")
    assert (first.number, second.number, second.head) == (1, 2, 2)
    assert first.draft and second.draft
    history = library.history("assistant")
    assert [(v.number, v.author, v.message) for v in history] == [
        (2, "U2", None),
        (1, "U1", "first"),
    ]
    assert history[0].created_at > history[1].created_at
    assert library.revision("assistant").number == 2
    assert library.revision("assistant@1").text == BASIC
    assert library.revision("assistant", 1).source == "paste"


def test_the_pasted_text_is_kept_exactly(library):
    text = '# my comment\r\nFROM llama3.2\r\n\r\nSYSTEM """multi\nline"""\r\n'
    view = library.save("commented", text, author="U1")
    assert library.revision("commented").text == text == view.text


def test_unchanged_text_is_not_a_new_revision(library):
    library.save("a", BASIC, author="U1")
    with pytest.raises(ConflictError, match="unchanged"):
        library.save("a", BASIC, author="U1")


def test_errors_refuse_saving_unless_forced(library):
    bad = "FROM llama3.2\nPARAMETER temprature 0.3\n"
    with pytest.raises(ValidationError, match=r"line 2: error: unknown parameter 'temprature'"):
        library.save("bad", bad, author="U1")
    with pytest.raises(NotFoundError):
        library.revision("bad")
    assert library.save("bad", bad, author="U1", force=True).number == 1


def test_unparsable_text_is_never_saved(library):
    with pytest.raises(ModelfileParseError, match="line 2"):
        library.save("x", "FROM a\nBOGUS x\n", author="U1", force=True)


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 129, "é"])
def test_bad_names_are_usage_errors(library, name):
    with pytest.raises(UsageError):
        library.save(name, BASIC, author="U1")


def test_missing_things_say_what_is_missing(library):
    with pytest.raises(NotFoundError, match="no stored Modelfile named nope"):
        library.revision("nope")
    library.save("a", BASIC, author="U1")
    with pytest.raises(NotFoundError, match="has no revision 7 \\(latest is 1\\)"):
        library.revision("a@7")


def test_list_shows_latest_base_and_application_state(library):
    library.save("b", BASIC, author="U1")
    library.save("a", "FROM mistral\n", author="U2")
    library.record_application("a", 1, endpoint="gpu1", model="a", user="U2")
    summaries = library.list()
    assert [(s.name, s.head, s.base, s.applied) for s in summaries] == [
        ("a", 1, "mistral", 1),
        ("b", 1, "llama3.2", 0),
    ]


def test_diff_is_unified_text_between_revisions(library):
    library.save("a", BASIC, author="U1")
    library.save("a", BASIC.replace("terse", "verbose"), author="U1")
    library.save("a", BASIC.replace("terse", "verbose") + "PARAMETER top_k 20\n", author="U1")
    old, new, text = library.diff("a")
    assert (old.number, new.number) == (2, 3)
    assert text.splitlines()[:2] == ["--- a@2", "+++ a@3"]
    assert "+PARAMETER top_k 20" in text.splitlines()
    _, _, text = library.diff("a", 1, 2)
    assert "-SYSTEM You are terse." in text.splitlines()
    assert "+SYSTEM You are verbose." in text.splitlines()
    old, new, text = library.diff("a", 1, 1)
    assert text == ""
    old, new, text = library.diff("a", 0, 1)
    assert old is None and text.startswith("--- /dev/null")


def test_diff_marks_a_missing_final_newline():
    text = unified_diff("FROM a", "FROM b\n", "x@1", "x@2")
    assert "\\ No newline at end of file" in text


def test_rollback_is_a_new_revision_with_the_old_text(library):
    library.save("a", BASIC, author="U1")
    library.save("a", BASIC.replace("terse", "loud"), author="U1")
    view = library.rollback("a", 1, author="U2")
    assert (view.number, view.text, view.source, view.author) == (3, BASIC, "rollback", "U2")
    assert view.message == "rollback to revision 1"
    assert [v.number for v in library.history("a")] == [3, 2, 1]
    with pytest.raises(ConflictError, match="already the latest"):
        library.rollback("a", 3, author="U2")
    with pytest.raises(ConflictError, match="unchanged"):
        library.rollback("a", 1, author="U2")


def test_applications_end_the_draft_state_and_are_recorded_once_per_job(library, clock):
    library.save("a", BASIC, author="U1")
    library.save("a", BASIC + "PARAMETER top_k 5\n", author="U1")
    assert library.record_application("a", 1, endpoint="gpu1", model="a:v1", user="U1", job_id=7)
    assert not library.record_application(
        "a", 1, endpoint="gpu1", model="a:v1", user="U1", job_id=7
    )
    clock.advance(5)
    library.record_application("a", 1, endpoint="gpu2", model="a", user="U2")
    first, second = library.revision("a", 1), library.revision("a", 2)
    assert not first.draft and second.draft
    assert [(a.endpoint, a.model, a.applied_by, a.job_id) for a in first.applications] == [
        ("gpu1", "a:v1", "U1", 7),
        ("gpu2", "a", "U2", None),
    ]


# -- elements ------------------------------------------------------------------------------------


def test_elements_have_revisions_and_same_content_is_not_a_new_one(library):
    content, _ = element_content("system", "Be brief.")
    first, changed = library.save_element("system", "brief", content, author="U1")
    assert changed and first.number == 1
    again, changed = library.save_element("system", "brief", content, author="U2")
    assert not changed and again.number == 1
    content2, _ = element_content("system", "Be very brief.")
    second, changed = library.save_element(
        "system", "brief", content2, author="U2", message="shorter"
    )
    assert changed and (second.number, second.head) == (2, 2)
    assert library.element("brief@1").content == {"text": "Be brief."}
    assert library.element("brief").content == {"text": "Be very brief."}
    assert [(r.number, r.author, r.message) for r in library.element_revisions("brief")] == [
        (2, "U2", "shorter"),
        (1, "U1", None),
    ]


def test_an_element_name_keeps_its_kind(library):
    _element(library, "system", "x", "hi")
    content, _ = element_content("template", TEMPLATE)
    with pytest.raises(ConflictError, match="x is a system prompt, not a template"):
        library.save_element("template", "x", content, author="U1")


def test_element_content_parsing_and_validation():
    content, warnings = element_content(
        "parameters", "PARAMETER temperature 0.7\nPARAMETER stop <|end|>", [("stop", "User:")]
    )
    assert content == {"parameters": {"temperature": "0.7", "stop": ["<|end|>", "User:"]}}
    assert warnings == []
    content, _ = element_content("messages", "MESSAGE user Hi\nMESSAGE assistant Hello!")
    assert content == {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
        ]
    }
    assert element_content("template", TEMPLATE)[0] == {"text": TEMPLATE}


@pytest.mark.parametrize(
    ("kind", "text", "settings", "error", "match"),
    [
        ("parameters", "PARAMETER temprature 1", (), ValidationError, "did you mean 'temperature'"),
        ("parameters", None, [("num_ctx", "4k")], ValidationError, r"invalid int value \[4k\]"),
        ("parameters", "SYSTEM hi", (), ValidationError, "only PARAMETER lines, not SYSTEM"),
        ("parameters", None, (), UsageError, "needs PARAMETER lines"),
        ("parameters", "PARAMETER top_p 0.9\nBOGUS 1", (), ModelfileParseError, "line 2"),
        ("messages", "MESSAGE bot hi", (), ModelfileParseError, "line 1"),
        ("messages", "# nothing", (), ValidationError, "at least one MESSAGE"),
        ("template", "{{ .Prompt ", (), ValidationError, "template"),
        ("system", "  ", (), UsageError, "needs its text"),
        ("system", "hi", [("a", "b")], UsageError, "only for parameter sets"),
        ("adapter", "x", (), UsageError, "kind must be one of"),
    ],
)
def test_element_content_refuses_what_ollama_would(kind, text, settings, error, match):
    with pytest.raises(error, match=match):
        element_content(kind, text, settings)


def test_stored_content_is_checked_however_it_was_built(library):
    with pytest.raises(ValidationError, match="unknown parameter 'bogus'"):
        check_content("parameters", {"parameters": {"bogus": "1"}})
    with pytest.raises(ValidationError, match="malformed"):
        check_content("system", {"txt": "x"})
    with pytest.raises(ValidationError):
        library.save_element("parameters", "p", {"parameters": {"top_k": "x"}}, author="U1")


def test_element_renders_as_modelfile_lines(library):
    view = _element(library, "parameters", "p", "PARAMETER top_k 20\nPARAMETER stop END")
    assert view.as_modelfile_text() == "PARAMETER top_k 20\nPARAMETER stop END\n"
    view = _element(library, "system", "s", "two\nlines")
    assert view.as_modelfile_text() == 'SYSTEM "two\nlines"\n'


@pytest.mark.parametrize(
    ("ref", "expected"), [("a", ("a", None)), ("a@3", ("a", 3)), ("x/y:z@12", ("x/y:z", 12))]
)
def test_refs(ref, expected):
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["a@b", "a@", "@1", "a b"])
def test_bad_refs(ref):
    with pytest.raises(UsageError):
        parse_ref(ref)


# -- composing -------------------------------------------------------------------------------------


def test_compose_previews_text_and_problems(library):
    _element(library, "system", "pirate", "Talk like a pirate.")
    _element(library, "template", "chat", TEMPLATE)
    _element(library, "parameters", "creative", "PARAMETER temperature 1.1\nPARAMETER stop <|end|>")
    _element(library, "parameters", "long", "PARAMETER num_ctx 8192\nPARAMETER stop <|user|>")
    _element(library, "messages", "greet", "MESSAGE user Hi\nMESSAGE assistant Arr!")
    preview = library.compose(
        base="llama3.2",
        system="pirate",
        template="chat",
        parameters=["creative", "long"],
        messages=["greet"],
        settings=[("temperature", "0.9")],
    )
    assert preview.text == (
        "FROM llama3.2\n"
        f"TEMPLATE {TEMPLATE}\n"
        "SYSTEM Talk like a pirate.\n"
        "PARAMETER num_ctx 8192\n"
        "PARAMETER stop <|end|>\n"
        "PARAMETER stop <|user|>\n"
        "PARAMETER temperature 0.9\n"
        "MESSAGE user Hi\n"
        "MESSAGE assistant Arr!\n"
    )
    assert preview.problems == []
    assert [v.ref for v in preview.used] == [
        "pirate@1",
        "chat@1",
        "creative@1",
        "long@1",
        "greet@1",
    ]
    assert parse(preview.text).parameter("temperature") == "0.9"


def test_compose_reports_problems_with_lines(library):
    _element(library, "template", "plain", "{{ .Prompt }}")
    _element(library, "system", "s", "Be kind.")
    preview = library.compose(base="llama3.2", template="plain", system="s")
    assert [(p.severity, p.line) for p in preview.problems] == [("warning", 3)]
    assert "SYSTEM is ignored" in preview.problems[0].message


def test_compose_from_a_stored_modelfile_swaps_elements(library):
    library.save(
        "base", "FROM llama3.2\nSYSTEM old\nPARAMETER top_k 10\nMESSAGE user a\n", author="U1"
    )
    _element(library, "system", "new", "new prompt")
    _element(library, "messages", "m", "MESSAGE user b")
    preview = library.compose(start="base", system="new", messages=["m"])
    mf = parse(preview.text)
    assert (mf.from_, mf.system, mf.parameter("top_k")) == ("llama3.2", "new prompt", "10")
    assert [m.content for m in mf.messages] == ["b"]
    assert parse(library.compose(start="base@1", base="mistral").text).from_ == "mistral"


def test_compose_with_a_pinned_element_revision(library):
    _element(library, "system", "s", "one")
    _element(library, "system", "s", "two")
    assert parse(library.compose(base="m", system="s@1").text).system == "one"
    assert parse(library.compose(base="m", system="s").text).system == "two"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"system": "s"}, UsageError, "no base model"),
        ({"base": "m", "template": "s"}, UsageError, "s is a system prompt, not a template"),
        ({"base": "m", "system": "ghost"}, NotFoundError, "no element named ghost"),
        ({"base": "m", "system": "s@9"}, NotFoundError, "no revision 9"),
        ({"base": "m", "parameters": ["p", "p"]}, UsageError, "same element is used twice"),
    ],
)
def test_compose_refusals(library, kwargs, error, match):
    _element(library, "system", "s", "x")
    _element(library, "parameters", "p", "PARAMETER top_k 1")
    with pytest.raises(error, match=match):
        library.compose(**kwargs)


def test_usage_counts_and_popular_combinations(library):
    _element(library, "system", "pirate", "Arr.")
    _element(library, "system", "formal", "Good day.")
    _element(library, "parameters", "creative", "PARAMETER temperature 1.2")
    _element(library, "parameters", "unused", "PARAMETER temperature 0.1")

    def save(name, base, **parts):
        preview = library.compose(base=base, **parts)
        return library.save(name, preview.text, author="U1", source="compose", used=preview.used)

    save("p1", "llama3.2", system="pirate", parameters=["creative"])
    save("p2", "llama3.2", system="pirate", parameters=["creative"])
    save("p2", "llama3.2", system="pirate", parameters=["creative"], settings=[("top_k", "3")])
    save("f1", "mistral", system="formal")
    counts = {s.name: (s.modelfiles, s.revisions) for s in library.elements()}
    assert counts == {
        "pirate": (2, 3),
        "creative": (2, 3),
        "formal": (1, 1),
        "unused": (0, 0),
    }
    assert [s.name for s in library.elements()][:2] == ["creative", "pirate"]
    assert [s.name for s in library.elements("parameters")] == ["creative", "unused"]
    combos = library.combinations()
    assert [(c.base, c.elements, c.modelfiles, c.revisions) for c in combos] == [
        ("llama3.2", ("creative", "pirate"), 2, 3),
        ("mistral", ("formal",), 1, 1),
    ]
    # element links follow a rollback
    view = library.rollback("p2", 1, author="U1")
    assert view.elements == ("creative@1", "pirate@1")
