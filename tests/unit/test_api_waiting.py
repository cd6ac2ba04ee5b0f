from api.waiting import parse_wait


def test_parse_wait():
    assert parse_wait(None, 60) is None
    assert parse_wait("respond-async", 60) is None
    assert parse_wait("wait=5", 60) == 5
    assert parse_wait("respond-async, Wait = 7", 60) == 7
    assert parse_wait('wait="3"', 60) == 3
    assert parse_wait("wait=600", 60) == 60  # capped by CHORUS_MAX_WAIT_S
    assert parse_wait("wait=-1", 60) == 0
    assert parse_wait("wait=soon", 60) is None  # malformed preferences are ignored (RFC 7240)
