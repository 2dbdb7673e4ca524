"""Progress of `cmedgui solve`/`refine` on stderr: a log file gets each text once, a terminal one live line."""

import io

from cmedgui.commands.solve import drive
from model.result import Progress


def job(texts):
    for fraction, message in texts:
        yield Progress("index", fraction, message)
    return "result"


class Terminal(io.StringIO):
    def isatty(self):
        return True


SITTING = [(0.05, "13 peaks")] * 300 + [(0.1, "R-3m, round 1 of 3")] * 200 + [(1.0, "done")]


def test_a_log_gets_a_line_only_when_the_text_changes():
    log = io.StringIO()
    assert drive(job(SITTING), log, every_s=0.0) == "result"
    assert log.getvalue().splitlines() == ["     index   5.0 %  13 peaks", "     index  10.0 %  R-3m, round 1 of 3",
                                           "     index 100.0 %  done"]


def test_a_log_is_throttled_but_keeps_the_last_line():
    log = io.StringIO()
    drive(job([(i / 1000, f"step {i}") for i in range(1000)] + [(1.0, "done")]), log, every_s=3600.0)
    assert log.getvalue().splitlines() == ["     index   0.0 %  step 0", "     index 100.0 %  done"]


def test_a_terminal_gets_one_line_rewritten_in_place():
    terminal = Terminal()
    drive(job(SITTING), terminal, every_s=0.0)
    text = terminal.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.count("\r\x1b[K") == len(SITTING)  # a sitting stage still shows the seconds going by
    assert "13 peaks  (0 s)" in text
