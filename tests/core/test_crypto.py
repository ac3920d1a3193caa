"""portal.core.crypto: sealing, sealed boxes, key wrapping, receipts, blind indexes, passwords, recovery keys.

Each test reads Given / When / Then. Nothing here touches Flask or a database.
"""

from __future__ import annotations

import base64
import math
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.core import crypto
from portal.core.crypto import DecryptionError

DEK = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PLACE = {"table": "reports", "column": "narrative", "row": "42"}
MARKER = "MARKER-narrative-the-sergeant-hit-him"
FAST_ARGON2 = crypto.Argon2Params(iterations=1, memory_kib=8, lanes=1)


def flipped(blob: bytes, position: int, mask: int = 0x01) -> bytes:
    return blob[:position] + bytes([blob[position] ^ mask]) + blob[position + 1 :]


# ---------------------------------------------------------------- data keys and field context


def test_new_data_keys_are_256_bit_and_random():
    # When two data keys are made
    first, second = crypto.new_data_key(), crypto.new_data_key()
    # Then each is 32 bytes and they differ
    assert len(first) == len(second) == 32
    assert first != second


@pytest.mark.parametrize("bad", [("re|ports", "c", "1"), ("t", "nar|rative", "1"), ("t", "c", "1|2")])
def test_field_context_refuses_the_separator_so_places_cannot_collide(bad):
    # Given a table, column or row containing '|' (which would make "a|b","c" equal "a","b|c")
    # When a context is built / Then it is refused
    with pytest.raises(ValueError):
        crypto.field_context(*bad)


def test_field_context_names_table_column_and_row():
    assert crypto.field_context("reports", "narrative", "42") == b"portal-field|reports|narrative|42"


# ---------------------------------------------------------------- seal_field / open_field


def test_seal_field_round_trip():
    # Given a sealed field
    blob = crypto.seal_field(DEK, b"what happened", **PLACE)
    # When it is opened with the same key and place / Then the plaintext comes back
    assert crypto.open_field(DEK, blob, **PLACE) == b"what happened"


def test_seal_field_round_trip_of_empty_plaintext():
    blob = crypto.seal_field(DEK, b"", **PLACE)
    assert crypto.open_field(DEK, blob, **PLACE) == b""


def test_seal_text_round_trip_keeps_unicode():
    text = "Siân said “stop” — twice. 警察"
    blob = crypto.seal_text(DEK, text, **PLACE)
    assert crypto.open_text(DEK, blob, **PLACE) == text


def test_sealed_field_has_the_documented_layout():
    # Given a plaintext of known length
    blob = crypto.seal_field(DEK, b"abc", **PLACE)
    # Then the blob is version byte + 12-byte nonce + ciphertext + 16-byte tag
    assert blob[:1] == crypto.VERSION
    assert len(blob) == 1 + 12 + 3 + 16


def test_sealed_field_does_not_contain_the_plaintext():
    # Given a distinctive marker sealed as text
    blob = crypto.seal_text(DEK, MARKER, **PLACE)
    # Then neither the marker nor any sizeable piece of it appears in the ciphertext
    assert MARKER.encode() not in blob
    assert b"MARKER" not in blob
    assert b"sergeant" not in blob


def test_two_seals_of_the_same_plaintext_differ():
    # When the same plaintext is sealed twice in the same place
    first = crypto.seal_field(DEK, b"same", **PLACE)
    second = crypto.seal_field(DEK, b"same", **PLACE)
    # Then the blobs differ, nonces included (nonces are random)
    assert first != second
    assert first[1:13] != second[1:13]
    # And both still open
    assert crypto.open_field(DEK, first, **PLACE) == crypto.open_field(DEK, second, **PLACE) == b"same"


def test_every_single_flipped_byte_of_a_sealed_field_fails():
    # Given a small sealed field
    blob = crypto.seal_field(DEK, b"hi", **PLACE)
    # When any one byte at any position is altered (low bit, or all bits)
    for position in range(len(blob)):
        for mask in (0x01, 0x80, 0xFF):
            # Then it does not open
            with pytest.raises(DecryptionError):
                crypto.open_field(DEK, flipped(blob, position, mask), **PLACE)


def test_every_truncation_of_a_sealed_field_fails_cleanly():
    blob = crypto.seal_field(DEK, b"hi", **PLACE)
    for length in range(len(blob)):
        with pytest.raises(DecryptionError):
            crypto.open_field(DEK, blob[:length], **PLACE)


def test_appended_bytes_fail():
    blob = crypto.seal_field(DEK, b"hi", **PLACE)
    with pytest.raises(DecryptionError):
        crypto.open_field(DEK, blob + b"\x00", **PLACE)


@pytest.mark.parametrize(
    "moved_to",
    [
        {"table": "reports", "column": "narrative", "row": "43"},  # another row
        {"table": "reports", "column": "subject_name", "row": "42"},  # another column
        {"table": "messages", "column": "narrative", "row": "42"},  # another table
        {"table": "reports", "column": "narrative", "row": "420"},  # a row id that shares a prefix
    ],
    ids=["row", "column", "table", "row-prefix"],
)
def test_a_sealed_field_moved_elsewhere_fails_to_open(moved_to):
    # Given a field sealed for reports.narrative of row 42
    blob = crypto.seal_field(DEK, b"narrative of 42", **PLACE)
    # When it is opened as if it were stored somewhere else / Then it fails
    with pytest.raises(DecryptionError):
        crypto.open_field(DEK, blob, **moved_to)


def test_a_sealed_field_fails_under_the_wrong_key():
    blob = crypto.seal_field(DEK, b"secret", **PLACE)
    with pytest.raises(DecryptionError):
        crypto.open_field(OTHER_KEY, blob, **PLACE)


@pytest.mark.parametrize("key", [b"", b"\x00" * 15, b"\x00" * 16, b"\x00" * 31, b"\x00" * 33])
def test_a_key_of_the_wrong_length_fails_with_decryption_error(key):
    # Given a key that is not 256 bits (AESGCM itself would raise ValueError for some lengths)
    blob = crypto.seal_field(DEK, b"secret", **PLACE)
    # Then opening fails with DecryptionError, never another exception
    with pytest.raises(DecryptionError):
        crypto.open_field(key, blob, **PLACE)


@pytest.mark.parametrize("garbage", [b"", b"\x01", b"\x02" + b"\x00" * 40, b"\x00" * 29, b"\xff" * 64])
def test_garbage_blobs_fail_with_decryption_error(garbage):
    with pytest.raises(DecryptionError):
        crypto.open_field(DEK, garbage, **PLACE)


# ---------------------------------------------------------------- wrap_key / unwrap_key


def test_wrap_key_round_trip():
    # Given a data key wrapped under a key-encryption key for report CR-2025-000001
    wrapped = crypto.wrap_key(OTHER_KEY, DEK, context="CR-2025-000001")
    # Then unwrapping with the same KEK and context gives it back
    assert crypto.unwrap_key(OTHER_KEY, wrapped, context="CR-2025-000001") == DEK
    # And the wrapped form does not contain the key
    assert DEK not in wrapped


def test_two_wraps_of_the_same_key_differ():
    first = crypto.wrap_key(OTHER_KEY, DEK, context="CR-2025-000001")
    second = crypto.wrap_key(OTHER_KEY, DEK, context="CR-2025-000001")
    assert first != second


def test_wrapped_key_fails_under_wrong_kek():
    wrapped = crypto.wrap_key(OTHER_KEY, DEK, context="CR-2025-000001")
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(DEK, wrapped, context="CR-2025-000001")


def test_wrapped_key_fails_under_wrong_context():
    # Given a data key wrapped for one report
    wrapped = crypto.wrap_key(OTHER_KEY, DEK, context="CR-2025-000001")
    # When it is presented as another report's wrapped key / Then it fails
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(OTHER_KEY, wrapped, context="CR-2025-000002")


def test_every_single_flipped_byte_of_a_wrapped_key_fails():
    wrapped = crypto.wrap_key(OTHER_KEY, DEK, context="c")
    for position in range(len(wrapped)):
        with pytest.raises(DecryptionError):
            crypto.unwrap_key(OTHER_KEY, flipped(wrapped, position), context="c")


def test_every_truncation_of_a_wrapped_key_fails_cleanly():
    wrapped = crypto.wrap_key(OTHER_KEY, DEK, context="c")
    for length in range(len(wrapped)):
        with pytest.raises(DecryptionError):
            crypto.unwrap_key(OTHER_KEY, wrapped[:length], context="c")


def test_a_sealed_field_cannot_be_unwrapped_as_a_key_with_the_same_words():
    # Given a field sealed under K; its context string is known to an attacker
    blob = crypto.seal_field(DEK, OTHER_KEY, **PLACE)
    context = crypto.field_context(**PLACE).decode()
    # When the blob is offered to unwrap_key with that exact string / Then the domains are separate
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(DEK, blob, context=context)


# ---------------------------------------------------------------- sealed boxes (X25519)


def test_keypair_public_half_matches_private_half():
    pair = crypto.generate_keypair()
    assert len(pair.private) == len(pair.public) == 32
    assert crypto.public_key_of(pair.private) == pair.public
    assert crypto.generate_keypair().private != pair.private


def test_seal_to_round_trip():
    # Given a queue key pair and a data key sealed to its public key
    queue = crypto.generate_keypair()
    box = crypto.seal_to(queue.public, DEK, context="queue|DPS|CR-2025-000001")
    # Then the queue's private key opens it
    assert crypto.open_sealed(queue.private, box, context="queue|DPS|CR-2025-000001") == DEK


def test_sealed_box_has_the_documented_layout_and_hides_the_plaintext():
    queue = crypto.generate_keypair()
    box = crypto.seal_to(queue.public, MARKER.encode(), context="c")
    # version + ephemeral public key + nonce + ciphertext + tag
    assert box[:1] == crypto.VERSION
    assert len(box) == 1 + 32 + 12 + len(MARKER) + 16
    assert MARKER.encode() not in box
    assert b"MARKER" not in box
    assert queue.public not in box


def test_two_sealed_boxes_of_the_same_plaintext_differ():
    queue = crypto.generate_keypair()
    first = crypto.seal_to(queue.public, DEK, context="c")
    second = crypto.seal_to(queue.public, DEK, context="c")
    assert first != second
    # the ephemeral keys differ too
    assert first[1:33] != second[1:33]


def test_sealed_box_fails_with_another_private_key():
    # Given a box sealed to queue A
    queue_a, queue_b = crypto.generate_keypair(), crypto.generate_keypair()
    box = crypto.seal_to(queue_a.public, DEK, context="c")
    # When queue B's private key tries to open it / Then it fails
    with pytest.raises(DecryptionError):
        crypto.open_sealed(queue_b.private, box, context="c")


def test_sealed_box_fails_with_the_wrong_context():
    queue = crypto.generate_keypair()
    box = crypto.seal_to(queue.public, DEK, context="queue|DPS|CR-2025-000001")
    with pytest.raises(DecryptionError):
        crypto.open_sealed(queue.private, box, context="queue|DPS|CR-2025-000002")


def test_every_single_flipped_byte_of_a_sealed_box_fails():
    queue = crypto.generate_keypair()
    box = crypto.seal_to(queue.public, b"k", context="c")
    for position in range(len(box)):
        for mask in (0x01, 0x80):
            with pytest.raises(DecryptionError):
                crypto.open_sealed(queue.private, flipped(box, position, mask), context="c")


def test_every_truncation_of_a_sealed_box_fails_cleanly():
    queue = crypto.generate_keypair()
    box = crypto.seal_to(queue.public, b"k", context="c")
    for length in range(len(box)):
        with pytest.raises(DecryptionError):
            crypto.open_sealed(queue.private, box[:length], context="c")


def test_sealed_box_with_a_low_order_ephemeral_key_fails_cleanly():
    # Given a forged box whose ephemeral key is the all-zero point (shared secret would be all zeros)
    queue = crypto.generate_keypair()
    box = crypto.seal_to(queue.public, DEK, context="c")
    forged = box[:1] + b"\x00" * 32 + box[33:]
    # Then opening fails with DecryptionError, not the ValueError from X25519
    with pytest.raises(DecryptionError):
        crypto.open_sealed(queue.private, forged, context="c")


@pytest.mark.parametrize("private", [b"", b"\x01" * 16, b"\x01" * 31, b"\x01" * 33])
def test_sealed_box_with_a_private_key_of_the_wrong_length_fails_cleanly(private):
    queue = crypto.generate_keypair()
    box = crypto.seal_to(queue.public, DEK, context="c")
    with pytest.raises(DecryptionError):
        crypto.open_sealed(private, box, context="c")


# ---------------------------------------------------------------- receipts

RECEIPT_SHAPE = r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$"


def test_receipt_alphabet_is_crockford_base32():
    # Then the alphabet is 32 distinct upper-case characters without I, L, O or U
    assert len(crypto.RECEIPT_ALPHABET) == len(set(crypto.RECEIPT_ALPHABET)) == 32
    assert set(crypto.RECEIPT_ALPHABET) <= set(string.digits + string.ascii_uppercase)
    assert not set("ILOU") & set(crypto.RECEIPT_ALPHABET)


def test_receipts_carry_at_least_100_bits_of_entropy():
    bits = crypto.RECEIPT_CHARS * math.log2(len(crypto.RECEIPT_ALPHABET))
    assert bits >= 100


def test_generate_receipt_is_five_groups_of_four_crockford_characters():
    import re

    for _ in range(200):
        receipt = crypto.generate_receipt()
        assert re.fullmatch(RECEIPT_SHAPE, receipt), receipt
        assert len(receipt.replace("-", "")) == 20


def test_generated_receipts_are_unique_and_use_the_whole_alphabet():
    # When many receipts are generated
    receipts = [crypto.generate_receipt() for _ in range(3000)]
    # Then none repeats
    assert len(set(receipts)) == len(receipts)
    # And every character of the alphabet turns up (60 000 draws; a biased generator would miss some)
    seen = set("".join(receipts).replace("-", ""))
    assert seen == set(crypto.RECEIPT_ALPHABET)
    # And every position varies
    for position in range(24):
        if position % 5 != 4:
            assert len({r[position] for r in receipts}) > 16


def test_generated_receipt_normalises_to_itself_without_hyphens():
    receipt = crypto.generate_receipt()
    assert crypto.normalise_receipt(receipt) == receipt.replace("-", "")


def test_format_receipt_groups_by_four():
    assert crypto.format_receipt("ABCD0123EFGH4567JKMN") == "ABCD-0123-EFGH-4567-JKMN"


CANONICAL = "K7QM3XRT9HD2BW4PZN6C"


@pytest.mark.parametrize(
    "typed",
    [
        "K7QM-3XRT-9HD2-BW4P-ZN6C",
        "k7qm-3xrt-9hd2-bw4p-zn6c",  # lower case
        "K7QM 3XRT 9HD2 BW4P ZN6C",  # spaces
        "  K7QM3XRT9HD2BW4PZN6C  ",  # padding
        "K7QM\u20133XRT\u20139HD2\u2013BW4P\u2013ZN6C",  # en dashes
        "K7QM\u20143XRT 9HD2-BW4P.ZN6C",  # em dash, space, hyphen, dot
        "K7QM\t3XRT\n9HD2-BW4P-ZN6C",  # tabs and newlines from copy and paste
        "ｋ７ＱＭ－３ＸＲＴ－９ＨＤ２－ＢＷ４Ｐ－ＺＮ６Ｃ",  # full-width forms
    ],
)
def test_normalise_receipt_tolerates_how_people_type(typed):
    assert crypto.normalise_receipt(typed) == CANONICAL


def test_normalise_receipt_reads_confusable_letters_as_digits():
    # Given a receipt containing 0 and 1, typed with O, o, I, i, L, l
    canonical = "0000111100001111ABCD"
    typed = "OoO0-IiLl-o0Oo-1lIL-abcd"
    # Then it normalises to the digits
    assert crypto.normalise_receipt(typed) == canonical


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "K7QM-3XRT-9HD2-BW4P-ZN6",  # 19 characters
        "K7QM-3XRT-9HD2-BW4P-ZN6CA",  # 21 characters
        "K7QM-3XRT-9HD2-BW4P-ZN6U",  # U is not in the alphabet
        "K7QM-3XRT-9HD2-BW4P-ZN6!",
        "K7QM-3XRT-9HD2-BW4P-ZN6É",
        "K7QM-3XRT-9HD2-BW4P-ZN6C-K7QM",
    ],
)
def test_normalise_receipt_rejects_wrong_length_or_characters(typed):
    assert crypto.normalise_receipt(typed) is None


def test_normalise_receipt_of_none_is_none():
    assert crypto.normalise_receipt(None) is None  # type: ignore[arg-type]


@st.composite
def mangled_receipts(draw):
    chars = draw(st.text(alphabet=crypto.RECEIPT_ALPHABET, min_size=20, max_size=20))
    pieces = []
    for char in crypto.format_receipt(chars):
        if char != "-" or draw(st.booleans()):
            pieces.append(char.lower() if draw(st.booleans()) else char)
        pieces.append(draw(st.sampled_from(["", "", "", " ", "-", "  ", " - ", "\u2013"])))
    prefix = draw(st.sampled_from(["", " ", "\t"]))
    return chars, prefix + "".join(pieces)


@settings(max_examples=300, deadline=None)
@given(mangled_receipts())
def test_any_mangled_receipt_normalises_back(case):
    # Given a receipt, re-cased at random with spaces and hyphens inserted anywhere
    canonical, typed = case
    # Then it normalises to the same value
    assert crypto.normalise_receipt(typed) == canonical


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_a_generated_receipt_mangled_normalises_back(data):
    receipt = crypto.generate_receipt()
    typed = "".join(
        (c.lower() if data.draw(st.booleans()) else c) + data.draw(st.sampled_from(["", " ", "-"])) for c in receipt
    )
    assert crypto.normalise_receipt(typed) == receipt.replace("-", "")


def test_receipt_lookup_index_depends_on_the_pepper():
    # Given one receipt and two peppers
    receipt = CANONICAL
    first = crypto.receipt_lookup_index(b"pepper-one" * 4, receipt)
    # Then the index is deterministic, 32 bytes, and changes with the pepper
    assert first == crypto.receipt_lookup_index(b"pepper-one" * 4, receipt)
    assert len(first) == 32
    assert first != crypto.receipt_lookup_index(b"pepper-two" * 4, receipt)
    # And differs between receipts
    assert first != crypto.receipt_lookup_index(b"pepper-one" * 4, "K7QM3XRT9HD2BW4PZN6D")
    # And does not contain the receipt
    assert receipt.encode() not in first


def test_receipt_key_is_deterministic_per_receipt_and_differs_between_receipts():
    key = crypto.receipt_key(CANONICAL)
    assert key == crypto.receipt_key(CANONICAL)
    assert len(key) == 32
    assert key != crypto.receipt_key("K7QM3XRT9HD2BW4PZN6D")


def test_receipt_as_typed_unwraps_the_data_key():
    # Given a data key wrapped under the key of a freshly generated receipt
    receipt = crypto.generate_receipt()
    wrapped = crypto.wrap_key(crypto.receipt_key(crypto.normalise_receipt(receipt)), DEK, context="CR-1")
    # When the reporter types it in lower case with spaces
    typed = receipt.lower().replace("-", " ")
    # Then the normalised value unwraps it
    assert crypto.unwrap_key(crypto.receipt_key(crypto.normalise_receipt(typed)), wrapped, context="CR-1") == DEK


# ---------------------------------------------------------------- blind indexes

INDEX_KEY = b"i" * 32


@pytest.mark.parametrize(
    "typed",
    ["ab-123 45", "AB12345", " ab 12345 ", "a.b/123-45", "ＡＢ１２３４５", "AB\t123\n45"],
)
def test_normalise_staff_number_examples(typed):
    assert crypto.normalise_staff_number(typed) == "AB12345"


def test_normalise_staff_number_drops_non_ascii_letters():
    assert crypto.normalise_staff_number("AB12345é") == "AB12345"
    assert crypto.normalise_staff_number("") == ""
    assert crypto.normalise_staff_number(None) == ""  # type: ignore[arg-type]


def test_staff_number_index_matches_however_typed():
    assert crypto.staff_number_index(INDEX_KEY, "ab-123 45") == crypto.staff_number_index(INDEX_KEY, "AB12345")
    assert crypto.staff_number_index(INDEX_KEY, "AB12345") != crypto.staff_number_index(INDEX_KEY, "AB12346")


@pytest.mark.parametrize(
    "variant",
    [
        "PC Siân O'Neil-Smith",
        "oneil smith, sian",
        "Sian ONeil Smith",
        "SIAN O\u2019NEIL SMITH",  # curly apostrophe
        "Smith, Siân O'Neil",
        "Detective Sergeant Sian O'Neil-Smith",
        "DS Sian O'Neil Smith",
        "Mrs. Siân  O'Neil-Smith ",
        "Sia\u0302n O'Neil-Smith",  # decomposed accent
    ],
)
def test_normalise_name_examples_meet(variant):
    assert crypto.normalise_name(variant) == "oneil sian smith"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Sgt John SMITH", "john smith"),
        ("Insp. Zoë Brontë", "bronte zoe"),
        ("Ch Supt Ana Ñúñez", "ana nunez"),
        ("Dr Ade Okafor", "ade okafor"),
        ("PC", ""),
        ("", ""),
    ],
)
def test_normalise_name_drops_titles_and_accents(typed, expected):
    assert crypto.normalise_name(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Sarah Constable", "constable sarah"),
        ("PC Sarah Constable", "constable sarah"),
        ("Sgt Tom Sergeant", "sergeant tom"),
        ("Amy Chief", "amy chief"),
    ],
)
def test_a_surname_that_is_also_a_rank_word_is_kept(typed, expected):
    # Given a real surname that is also a title word (Constable, Sergeant and Chief are English surnames)
    # When the name is normalised / Then only the leading title is dropped, not the surname
    assert crypto.normalise_name(typed) == expected


def test_different_people_whose_surnames_are_rank_words_are_not_linked():
    # Given two different people, neither of whom is just "Sarah"
    # Then their name indexes differ (a false link inflates earlier_concerns and misroutes the case)
    assert crypto.name_index(INDEX_KEY, "Sarah Constable") != crypto.name_index(INDEX_KEY, "Sarah Sergeant")
    assert crypto.name_index(INDEX_KEY, "Sarah Constable") != crypto.name_index(INDEX_KEY, "PC Sarah")


def test_name_index_matches_variants_and_separates_people():
    assert crypto.name_index(INDEX_KEY, "PC Siân O'Neil-Smith") == crypto.name_index(INDEX_KEY, "oneil smith, sian")
    assert crypto.name_index(INDEX_KEY, "John Smith") != crypto.name_index(INDEX_KEY, "Jane Smith")


def test_different_purposes_give_different_indexes_for_the_same_value():
    assert crypto.blind_index(INDEX_KEY, "name", "ab12345") != crypto.blind_index(INDEX_KEY, "staff-number", "ab12345")


def test_different_index_keys_give_different_indexes():
    assert crypto.staff_number_index(b"a" * 32, "AB12345") != crypto.staff_number_index(b"b" * 32, "AB12345")
    assert crypto.name_index(b"a" * 32, "John Smith") != crypto.name_index(b"b" * 32, "John Smith")


def test_blind_index_is_deterministic_and_hides_the_value():
    index = crypto.staff_number_index(INDEX_KEY, "AB12345")
    assert index == crypto.staff_number_index(INDEX_KEY, "AB12345")
    assert len(index) == 32
    assert b"AB12345" not in index


def test_blind_index_of_an_empty_value_is_none():
    assert crypto.blind_index(INDEX_KEY, "name", "") is None


@pytest.mark.parametrize("empty", ["", "  ", "-", "PC", "Sgt.", "Det Insp"])
def test_a_name_of_only_titles_or_punctuation_has_no_index(empty):
    # Given a name that normalises to nothing / Then there is no index (so blanks never "match")
    assert crypto.name_index(INDEX_KEY, empty) is None


@pytest.mark.parametrize("empty", ["", "  ", "--", "./"])
def test_a_staff_number_of_only_punctuation_has_no_index(empty):
    assert crypto.staff_number_index(INDEX_KEY, empty) is None


# ---------------------------------------------------------------- passwords


def test_password_key_is_deterministic_for_the_same_salt():
    salt = b"s" * 16
    first = crypto.password_key("correct horse", salt, FAST_ARGON2)
    assert first == crypto.password_key("correct horse", salt, FAST_ARGON2)
    assert len(first) == 32


def test_password_key_differs_across_salts_passwords_and_costs():
    salt = b"s" * 16
    key = crypto.password_key("correct horse", salt, FAST_ARGON2)
    assert key != crypto.password_key("correct horse", b"t" * 16, FAST_ARGON2)
    assert key != crypto.password_key("correct horsf", salt, FAST_ARGON2)
    assert key != crypto.password_key("correct horse", salt, crypto.Argon2Params(iterations=2, memory_kib=8, lanes=1))


def test_password_key_unlocks_an_officer_private_key_and_a_wrong_password_does_not():
    # Given an officer's private key wrapped under their password key
    salt = crypto.new_salt()
    officer = crypto.generate_keypair()
    wrapped = crypto.wrap_key(crypto.password_key("pw-right", salt, FAST_ARGON2), officer.private, context="u1")
    # Then the right password unwraps it and a wrong one does not
    assert crypto.unwrap_key(crypto.password_key("pw-right", salt, FAST_ARGON2), wrapped, context="u1") == (
        officer.private
    )
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(crypto.password_key("pw-wrong", salt, FAST_ARGON2), wrapped, context="u1")


def test_new_salts_are_random_and_16_bytes():
    assert len(crypto.new_salt()) == 16
    assert crypto.new_salt() != crypto.new_salt()


def test_default_argon2_costs_meet_rfc_9106_second_recommendation():
    # RFC 9106 section 4: t=3, 64 MiB memory, 4 lanes for memory-constrained settings
    defaults = crypto.Argon2Params()
    assert defaults.iterations >= 3
    assert defaults.memory_kib >= 64 * 1024
    assert defaults.lanes >= 1


# ---------------------------------------------------------------- recovery key text


def test_recovery_key_round_trip():
    pair = crypto.generate_keypair()
    text = crypto.encode_recovery_key(pair.private)
    assert text.startswith(crypto.RECOVERY_HEADER + "\n")
    assert crypto.decode_recovery_key(text) == pair.private


def test_recovery_key_survives_extra_whitespace_and_crlf():
    pair = crypto.generate_keypair()
    text = "\r\n\r\n  " + crypto.encode_recovery_key(pair.private).replace("\n", "\r\n") + "\n\n"
    assert crypto.decode_recovery_key(text) == pair.private


def test_decoded_recovery_key_opens_what_was_sealed_to_it():
    recovery = crypto.generate_keypair()
    box = crypto.seal_to(recovery.public, DEK, context="recovery|CR-1")
    private = crypto.decode_recovery_key(crypto.encode_recovery_key(recovery.private))
    assert crypto.open_sealed(private, box, context="recovery|CR-1") == DEK


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        crypto.RECOVERY_HEADER,
        crypto.RECOVERY_HEADER + "\n",
        "PORTAL RECOVERY PRIVATE KEY v2\n" + base64.b64encode(b"k" * 32).decode(),
        crypto.RECOVERY_HEADER + "\n" + "!!!not base64!!!",
        crypto.RECOVERY_HEADER + "\n" + base64.b64encode(b"k" * 32).decode()[:-1],  # bad padding
        crypto.RECOVERY_HEADER + "\n" + base64.b64encode(b"k" * 31).decode(),  # too short
        crypto.RECOVERY_HEADER + "\n" + base64.b64encode(b"k" * 33).decode(),  # too long
        crypto.RECOVERY_HEADER + "\n" + base64.b64encode(b"k" * 32).decode() + "\nextra",
        crypto.RECOVERY_HEADER + "\n" + "ÄÖÜ" * 10,  # not ASCII
        base64.b64encode(b"k" * 32).decode(),  # key without header
    ],
)
def test_decode_recovery_key_rejects_garbage_with_value_error(text):
    with pytest.raises(ValueError):
        crypto.decode_recovery_key(text)


def test_b64_round_trip_and_strictness():
    assert crypto.unb64(crypto.b64(b"\x00\xffabc")) == b"\x00\xffabc"
    with pytest.raises(ValueError):
        crypto.unb64("a b c d")
