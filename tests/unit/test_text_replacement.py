"""Text that cannot be stored or encoded becomes U+FFFD; everything else is left as it was."""

from __future__ import annotations

import json
import os

import pytest

from skyrun.client.transport import encode_json
from skyrun.safe_text import clean_json_bytes, clean_text, replace_surrogates

NON_UTF8_NAME = os.fsdecode(b"caf\xe9.csv")  # what os.listdir gives for a Latin-1 file name


def test_a_non_utf8_file_name_holds_a_lone_surrogate() -> None:
    assert NON_UTF8_NAME == "caf\udce9.csv"
    with pytest.raises(UnicodeEncodeError):
        NON_UTF8_NAME.encode()


def test_clean_text_replaces_nul_and_lone_surrogates_only() -> None:
    assert clean_text("a\x00b\ud800c\udfffd") == "a\ufffdb\ufffdc\ufffdd"
    assert clean_text(NON_UTF8_NAME) == "caf\ufffd.csv"
    kept = "plain, accents é, emoji 😀, tab\t, escape \x1b[1m"
    assert clean_text(kept) == kept
    assert clean_text(clean_text("\x00\ud800")) == "\ufffd\ufffd"  # idempotent


def test_replace_surrogates_keeps_nul() -> None:
    assert replace_surrogates("a\x00\udce9") == "a\x00\ufffd"


@pytest.mark.parametrize(
    ("json_text", "decoded"),
    [
        (rb'"a\u0000b"', "a\ufffdb"),
        (rb'"\ud800x"', "\ufffdx"),
        (rb'"\uDBFF"', "\ufffd"),
        (rb'"\udc00\ud800"', "\ufffd\ufffd"),  # a low surrogate first is no pair
        (rb'"\ud800\ud800\udc00"', "\ufffd\U00010000"),  # a lone one, then a pair
        (rb'{"\u0000key": ["\ud800", 1]}', {"\ufffdkey": ["\ufffd", 1]}),  # keys too
    ],
)
def test_unsafe_json_escapes_become_replacement_characters(
    json_text: bytes, decoded: object
) -> None:
    assert json.loads(clean_json_bytes(json_text)) == decoded


@pytest.mark.parametrize(
    "json_text",
    [
        rb'"\ud83d\ude00"',  # a surrogate pair is one valid character
        rb'"\uD83D\uDE00"',
        rb'"\\u0000 and \\ud800"',  # an escaped backslash: literal text, not escapes
        rb'"\\\\"',
        rb'"\u00e9\u001b\n\"\\"',
        b'"no escapes at all \xc3\xa9"',
    ],
)
def test_other_json_is_left_unchanged(json_text: bytes) -> None:
    assert clean_json_bytes(json_text) == json_text


def test_the_client_encodes_lone_surrogates_instead_of_failing() -> None:
    body = encode_json({"message": f"reading {NON_UTF8_NAME}", NON_UTF8_NAME: "\x00"})
    assert json.loads(body) == {"message": "reading caf\ufffd.csv", "caf\ufffd.csv": "\x00"}
    assert encode_json({"a": "é"}) == '{"a":"é"}'.encode()
