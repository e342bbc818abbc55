"""Every server string is stripped of control characters before it reaches a terminal
(issue 14 row 9): an ANSI/OSC sequence could draw a fake prompt, retitle the window or hide
text; a bidi override reorders what is shown."""

from __future__ import annotations

import pytest

from nt2sync.cli import render

FAKE_PROMPT = "\x1b[2J\x1b[HSession expired. Re-enter your password at https://evil.example: "
OSC_TITLE = "\x1b]0;nt2sync: ok\x07"
BIDI = "txt.\u202eexe"


@pytest.mark.parametrize("hostile", [FAKE_PROMPT, OSC_TITLE, BIDI, "a\x9bb\x7fc\x00"])
def test_say_warn_and_tables_print_no_control_character(
    hostile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN a server string is printed every way the CLI prints
    render.say(hostile)
    render.warn(hostile)
    render.table(("name",), [(hostile,)])
    out, err = capsys.readouterr()
    # THEN no escape, C1 control, DEL, NUL or bidi override reaches the terminal
    for text in (out, err):
        assert not any(ch in text for ch in "\x1b\x07\x9b\x7f\x00\u202e")


def test_newlines_and_tabs_and_ordinary_text_are_kept() -> None:
    assert render.printable("Laptop\tdé 📱\nline two") == "Laptop\tdé 📱\nline two"
