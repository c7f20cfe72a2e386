"""Opt-in resource-leak check: ``pytest -p tests.leakcheck -W error::ResourceWarning``.

The suite shows an unclosed socket or file as a warning, not a failure, because the
garbage collector finds one that sits in a reference cycle at an arbitrary later moment,
in whichever test happens to be running then (see docs/development.md). This plugin
collects garbage after every test, so a leak is reported by the test that made it (or
the next one's setup); run it when adding code that opens connections. It makes the
suite about twice as slow, so it is not part of the default run.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    gc.collect()
