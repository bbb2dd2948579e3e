"""Where cutover waits: the end of the source's WAL as a replication slot confirms it."""

from __future__ import annotations

from cloudshift.db.follow import record_end


def test_a_position_inside_a_page_is_the_record_end() -> None:
    assert record_end("0/3000A28", in_page=2600, in_segment=2600) == "0/3000A28"


def test_a_position_past_a_page_header_steps_back_to_the_boundary() -> None:
    # 0/3002018 is 24 bytes (a page header) into the page at 0/3002000.
    assert record_end("0/3002018", in_page=24, in_segment=0x2018) == "0/3002000"


def test_a_position_past_a_segment_header_steps_back_across_the_high_word() -> None:
    # The first page of segment 1/0 has the long (40-byte) header.
    assert record_end("1/28", in_page=40, in_segment=40) == "1/0"
