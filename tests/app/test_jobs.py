import time

import pytest

from cmedgui.app.jobs import JobRunner, describe_error
from model.errors import InputError
from model.result import Progress


def counting(n, pause_s=0.0):
    for i in range(n):
        time.sleep(pause_s)
        yield Progress("count", (i + 1) / n, f"{i + 1}")
    return n * 10


def broken():
    yield Progress("start", 0.0)
    raise InputError("data.xy", "no peaks found")


def test_inline_job_reports_progress_and_result(qtbot):
    runner = JobRunner(inline=True)
    steps, results = [], []
    runner.progress.connect(lambda name, step: steps.append(step.fraction))
    runner.finished.connect(lambda name, value: results.append((name, value)))
    runner.submit("Count", counting, 4)
    assert steps == [0.25, 0.5, 0.75, 1.0]
    assert results == [("Count", 40)]
    assert not runner.busy


def test_threaded_job_returns_its_value(qtbot):
    runner = JobRunner()
    with qtbot.waitSignal(runner.finished, timeout=5000) as blocker:
        runner.submit("Count", counting, 3, 0.01)
        assert runner.busy
    assert blocker.args == ["Count", 30]
    assert runner.wait(2000)


def test_cancel_stops_within_one_second(qtbot):
    runner = JobRunner()
    started = []
    runner.progress.connect(lambda *_: started.append(time.perf_counter()))
    runner.submit("Long", counting, 10_000, 0.05)
    qtbot.waitUntil(lambda: bool(started), timeout=2000)
    with qtbot.waitSignal(runner.cancelled, timeout=1000):
        asked = time.perf_counter()
        runner.cancel()
    assert time.perf_counter() - asked < 1.0
    assert not runner.busy
    assert runner.wait(1000)


def test_failure_is_one_line(qtbot):
    runner = JobRunner()
    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.submit("Solve", broken)
    assert blocker.args == ["Solve", "data.xy: no peaks found"]


def test_one_job_at_a_time(qtbot):
    runner = JobRunner()
    runner.submit("Long", counting, 1000, 0.01)
    with pytest.raises(RuntimeError):
        runner.submit("Other", counting, 1)
    with qtbot.waitSignal(runner.cancelled, timeout=2000):
        runner.cancel()
    assert runner.wait(1000)


def test_internal_errors_are_described_in_one_line():
    assert describe_error(ZeroDivisionError("division by zero\nmore")) == \
        "internal error: ZeroDivisionError: division by zero"
