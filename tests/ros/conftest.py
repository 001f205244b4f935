"""pytest fixtures for the das_ros tests (helpers live in ros_helpers.py).

``DAS_REQUIRE_ROS=1`` (set by ``.ci/run``, which installs ROS 2 from PyPI) turns every skipped test under
tests/ros into a failed run: there a skipped rclpy test means the node went untested, not "no ROS here".
Without it, the rclpy tests skip on a machine without ROS 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REQUIRE_ROS = os.environ.get("DAS_REQUIRE_ROS", "") not in ("", "0")

# Tests of several people on one machine must not see each other's nodes: one DDS domain per test run,
# discovery limited to this host. Read by rclpy.init(), so set before any test starts ROS.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

_skipped: list[str] = []


def _is_ours(path: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(HERE)
    except (OSError, ValueError):
        return False


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped and _is_ours(str(report.fspath)):
        _skipped.append(f"{report.nodeid}: {report.longrepr}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and _is_ours(str(report.fspath)):
        _skipped.append(f"{report.nodeid}: {report.longrepr}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE_ROS and _skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # noqa: ANN001
    if REQUIRE_ROS and _skipped:
        terminalreporter.section("DAS_REQUIRE_ROS=1: skipped ROS tests fail the run", red=True)
        for line in _skipped:
            terminalreporter.line(line)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
