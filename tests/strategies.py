"""Hypothesis strategies for Session specs, valid and invalid: shared by the drift tests
(the CRD and the models agree) and the fault tests (the operator survives what is accepted)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Pieces of branch names: the ordinary, everything git's rules single out, and
# what a shell would act on.
REF_PIECES = [
    *"abZ09_-./@{}~^:?*[]\\ \t\n\r\x00\x01\x1f\x7f\x80éλ\u2028;|&'\"`)",
    "..",
    "//",
    "@{",
    "lock",
    ".lock",
    "$(",
    "HEAD",
    "refs/heads/",
    "feature",
    "topic/",
]

ref_names = st.one_of(
    st.lists(st.sampled_from(REF_PIECES), min_size=0, max_size=8).map("".join),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
    st.integers(195, 205).map(lambda n: "a/" * (n // 2) + "b" * (n % 2)),
    st.integers(198, 202).map(lambda n: "é" * n),  # length counts characters, not bytes
    st.sampled_from(["@", "a.", "a/", "/a", ".a", "a/.b", "x.lock", "x.lock/y", "x.locked"]),
)

DIGITS = "0123456789"
numbers = st.one_of(
    st.integers(0, 1000).map(str),
    st.text(DIGITS, min_size=1, max_size=22),
    st.sampled_from(
        [
            "0",
            "00",
            "007",
            "30",
            "31",
            "719",
            "720",
            "721",
            "43200",
            "43201",
            "2562047",
            "2562048",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999",
        ]
    ),
)
fractions = st.one_of(
    st.just(""),
    st.text(DIGITS, min_size=1, max_size=24).map(lambda d: "." + d),
    st.sampled_from([".", ".5", ".0000000001", ".0000001", ".000000000000000000001"]),
)
units = st.sampled_from(["ns", "us", "µs", "μs", "ms", "s", "m", "h", "d", "H", "D", "sec", ""])
duration_parts = st.tuples(numbers, fractions, units).map("".join)
expires = st.one_of(
    st.lists(duration_parts, min_size=1, max_size=4).map("".join),
    st.tuples(numbers, st.just("d")).map("".join),
    st.sampled_from(
        [
            "",
            "-1h",
            "+1h",
            " 1h",
            "1h ",
            "24h\n",
            "abc",
            "0",
            "1.5d",
            "30d",
            "31d",
            "720h",
            "721h",
            "720h1ns",
            "719h60m",
            "2562047h47m16.854775807s",
            "2562047h47m16.854775808s",
            "720.0000000001h",
            "0.0000001s",
            "0.0000000001s",
            "1h30m",
            "90m",
            "7d",
        ]
    ),
    st.text(max_size=6),
)
labels = st.one_of(
    st.sampled_from(["shop", "a", "a-b", "0", "a" * 63]),
    st.sampled_from(["", "Shop", "a" * 64, "-a", "a-", "a.b", "a_b", "a\n", "é"]),
)
ports = st.one_of(
    st.integers(-3, 70000),
    st.sampled_from([0, 1, 65535, 65536]),
    st.integers(-(2**63), 2**63 - 1),
)
checkins = st.fixed_dictionaries(
    {}, optional={"skipReview": st.booleans(), "autoMerge": st.booleans()}
)
BRANCH_SHAPES = [
    ("branch",),
    ("branch",),
    ("newBranch",),
    ("newBranch", "fromRef"),
    ("newBranch", "fromRef"),
    ("branch", "newBranch"),
    (),
    ("branch", "fromRef"),
    ("fromRef",),
]


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.integers(0, 19)):  # absent now and then
        spec["project"] = draw(st.one_of(st.just("shop"), labels))
    for field in draw(st.sampled_from(BRANCH_SHAPES)):
        spec[field] = draw(st.one_of(st.sampled_from(["feature-a", "topic/x"]), ref_names))
    optional = {
        "container": labels,
        "featureSlug": labels,
        "expiresIn": expires,
        "webUI": st.booleans(),
        "previewPort": ports,
        "checkin": checkins,
    }
    for field, strategy in optional.items():
        if draw(st.booleans()):
            spec[field] = draw(strategy)
    return spec
