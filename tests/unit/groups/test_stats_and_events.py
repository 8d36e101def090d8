"""The comparison's tests and words, and CloudEvents parsing, without a database."""

from __future__ import annotations

import json

import pytest

from modelarium.config import Settings
from modelarium.core.errors import UsageError
from modelarium.core.groups.ingest import MalformedEvent, Outcome, parse
from modelarium.core.groups.stats import MemberStats, two_proportions, versus
from modelarium.core.groups.views import Rules, check_member, check_name, check_traffic
from tests.fakes import kserve_logger as kl

RULES = Rules(min_requests=100, max_error_increase=0.01, max_p95_ratio=1.2, significance=0.05,
              retention=86400.0)  # fmt: skip


def _member(name, role, n, errors, latencies):
    values = sorted(latencies)
    stats = MemberStats(name, role, n, errors, sample=list(values))
    stats.p50 = values[len(values) // 2]
    stats.p95 = values[int(len(values) * 0.95)]
    stats.p99 = values[int(len(values) * 0.99)]
    return stats


def test_two_proportions_matches_the_textbook_z_test():
    diff, ci, p, one_sided = two_proportions(40, 1000, 70, 1000)
    assert diff == pytest.approx(0.03)
    assert p == pytest.approx(0.00326, rel=0.01)  # pooled z = 2.94
    assert one_sided == pytest.approx(p / 2, rel=1e-6)
    assert ci[0] < 0.03 < ci[1]
    assert two_proportions(0, 10, 0, 10)[2] == 1.0  # no errors anywhere: nothing to test


def test_a_faster_challenger_is_better_in_plain_words():
    champion = _member("a", "champion", 4210, 21, [100 + (i % 50) for i in range(3000)])
    challenger = _member("b", "challenger", 3980, 20, [88 + (i % 44) for i in range(3000)])
    v = versus(champion, challenger, RULES)
    assert v.verdict == "better" and v.ready
    assert v.words.startswith("challenger p95 12% lower (95% CI")
    assert "n = 3,980 vs 4,210" in v.words
    assert "error rates 0.5% vs 0.5%, no significant difference" in v.words


def test_a_slower_challenger_breaches_only_with_significance():
    champion = _member("a", "champion", 500, 0, [100 + (i % 20) for i in range(500)])
    slow = _member("b", "challenger", 500, 0, [150 + (i % 20) for i in range(500)])
    v = versus(champion, slow, RULES)
    assert v.verdict == "worse" and [r.rule for r in v.breached] == ["max_p95_ratio"]
    short = _member("b", "challenger", 5, 0, [150, 151, 152, 153, 154])
    v = versus(champion, short, RULES)
    assert not v.breached and v.verdict == "too few requests"
    assert "b has 5 (95 more needed)" in v.words


@pytest.mark.parametrize(
    ("value", "error"),
    [("Chat!", "lowercase"), ("-x", "lowercase"), ("a" * 64, "lowercase")],
)
def test_names_are_checked(value, error):
    with pytest.raises(UsageError, match=error):
        check_name(value)


def test_members_and_traffic_are_checked():
    assert check_member("gpu-1/meta-llama/Llama-3.1-8B") == "gpu-1/meta-llama/Llama-3.1-8B"
    for bad in ("nothing", "/x", "a//b", "a/ b", "a/$(x)"):
        with pytest.raises(UsageError):
            check_member(bad)
    assert check_traffic("25%") == 25
    for bad in ("-1", "101", "ten"):
        with pytest.raises(UsageError):
            check_traffic(bad)


def test_rules_take_overrides_over_settings(tmp_path):
    settings = Settings(data_dir=tmp_path)
    rules = Rules.of(settings, {"min_requests": 5, "unknown": 1})
    assert rules.min_requests == 5 and rules.max_p95_ratio == settings.group_max_p95_ratio


def test_binary_structured_and_batch_events_parse():
    headers, body = kl.binary(kl.RESPONSE, "r-1", 1_800_000_000.123456789,
                              kl.chat_response("m", "x", 3, 4))  # fmt: skip
    assert headers["Ce-Time"].endswith("Z") and len(headers["Ce-Time"].split(".")[1]) > 7
    [event] = parse({k.lower(): v for k, v in headers.items()}, body)
    assert (event.id, event.kind) == ("r-1", "response")
    assert event.ts == pytest.approx(1_800_000_000.123456, abs=1e-6)
    assert event.data == Outcome(True, 3, 4, "x", None)
    headers, body = kl.structured(kl.REQUEST, "r-2", 1_800_000_000.5, {"prompt": "p"})
    [event] = parse({k.lower(): v for k, v in headers.items()}, body)
    assert (event.kind, event.prompt()) == ("request", "p")
    batch = [json.loads(kl.structured(kl.REQUEST, f"b-{n}", 1.0, {})[1]) for n in range(3)]
    events = parse({"content-type": "application/cloudevents-batch+json"},
                   json.dumps(batch).encode())  # fmt: skip
    assert [e.id for e in events] == ["b-0", "b-1", "b-2"]


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"content-type": "text/plain"}, b"x", "not a CloudEvent"),
        ({"content-type": "application/cloudevents+json"}, b"{}", "specversion"),
        ({"content-type": "application/cloudevents-batch+json"}, b"[]", "non-empty"),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "x",
                "ce-source": "s",
                "ce-type": kl.REQUEST,
                "ce-time": "2024-13-45T00:00:00Z",
            },
            b"",
            "RFC 3339",
        ),
        ({"ce-specversion": "1.0", "ce-source": "s", "ce-type": kl.REQUEST}, b"", "no id"),
    ],
)
def test_malformed_events_are_refused_in_one_line(headers, body, message):
    with pytest.raises(MalformedEvent, match=message):
        parse(headers, body)
