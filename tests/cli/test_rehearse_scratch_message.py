"""`rehearse --scratch DSN` on a server that does not answer: the error reads naturally
("connecting for identifying the scratch server (--scratch) on ... failed"), with no word
said twice (it once read "connecting for connecting to the scratch server")."""

from __future__ import annotations

import re

from tests.fixtures.cli import Setup


def test_an_unreachable_scratch_server_is_named_without_a_doubled_word(file_setup: Setup) -> None:
    file_setup.run("backup")
    result = file_setup.run("rehearse", "--scratch", "postgresql://x@127.0.0.1:1/db", expect=1)
    [message] = [line for line in result.stderr.splitlines() if line.startswith("drtool: error:")]
    ours = message.split(" failed:")[0]  # drtool's words; libpq's reason follows
    assert ours == (
        "drtool: error: connecting for identifying the scratch server (--scratch) on 127.0.0.1:1/db"
    ), message
    assert len(re.findall(r"\bconnecting\b", message)) == 1, message
