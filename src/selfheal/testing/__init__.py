"""Test seams that ship as public API, for selfheal's tests and for its users' own.

- `FakeClock`: time moves only when the test says so (pass it as ``clock=``).
- `FakeProgramControl`: a `ProgramControl` that records start, stop and restart calls and can
  be told to fail or to hang.
- `FakeHealthSource`: a `HealthSource` whose statuses the test sets, counting `check_now` calls.
- `EventRecorder`: collects what a bus publishes and waits, within a bound, for an event.
"""

from selfheal.testing._clock import FakeClock
from selfheal.testing._fakes import FakeHealthSource, FakeProgramControl
from selfheal.testing._recorder import EventRecorder

__all__ = ["EventRecorder", "FakeClock", "FakeHealthSource", "FakeProgramControl"]
