#!/usr/bin/env bash
# Quality gate (REP-2004 level 1 spirit): ruff on the repo, mypy on das_core + the pure das_ros modules,
# line coverage of both packages under the test suite; prints a summary and fails if a gate fails.
#
#   scripts/quality.sh                    # everything (the full test suite: ~15 min on 2 cores)
#   QUALITY_TESTS="tests/core tests/ros" scripts/quality.sh      # coverage from a subset of the tests
#   QUALITY_MIN_COVERAGE=80 scripts/quality.sh                   # also fail below 80 % (pure modules)
#
# das_ros/node.py is the rclpy shell: mypy cannot see rclpy's types without ROS, and its lines run only in
# tests that need rclpy (skipped without ROS), so it is reported separately from the pure modules.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
TESTS=${QUALITY_TESTS:-tests}
OUT=${QUALITY_OUT:-$(mktemp -d)}
PURE_ROS=$(ls das_ros/*.py das_ros/apps/*.py | grep -v '/node\.py$')

echo "== ruff check ."
$PY -m ruff check . --output-format concise
ruff_rc=$?
ruff_n=$($PY -m ruff check . --output-format concise --exit-zero 2>/dev/null | grep -cE '^[^ ]+:[0-9]+:[0-9]+:')

echo "== mypy --check-untyped-defs das_core + pure das_ros"
# shellcheck disable=SC2086
$PY -m mypy --check-untyped-defs das_core $PURE_ROS | tee "$OUT/mypy.txt"
mypy_rc=${PIPESTATUS[0]}
mypy_n=$(grep -cE '^[^ ]+:[0-9]+: error:' "$OUT/mypy.txt")

echo "== pytest with coverage ($TESTS)"
# shellcheck disable=SC2086
$PY -m pytest -q -p no:cacheprovider --continue-on-collection-errors --cov=das_core --cov=das_ros --cov-report= \
    --cov-report=json:"$OUT/coverage.json" $TESTS
test_rc=$?

$PY - "$OUT/coverage.json" "$ruff_n" "$ruff_rc" "$mypy_n" "$mypy_rc" "$test_rc" "${QUALITY_MIN_COVERAGE:-0}" <<'PYEOF'
import json, sys
path, ruff_n, ruff_rc, mypy_n, mypy_rc, test_rc, min_cov = sys.argv[1:]
try:
    files = json.load(open(path))["files"]
except (OSError, ValueError, KeyError):
    files = {}
groups = {"das_core": [0, 0], "das_ros (pure)": [0, 0], "das_ros/node.py (rclpy)": [0, 0]}
for name, f in files.items():
    s = f["summary"]
    key = ("das_core" if name.startswith("das_core/") else
           "das_ros/node.py (rclpy)" if name.endswith("das_ros/node.py") else "das_ros (pure)")
    groups[key][0] += s["covered_lines"]
    groups[key][1] += s["num_statements"]
print("\n== quality summary")
print(f"ruff:   {ruff_n} issue(s) {'OK' if ruff_rc == '0' else 'FAIL'}")
print(f"mypy:   {mypy_n} error(s) {'OK' if mypy_rc == '0' else 'FAIL'} (das_core + pure das_ros, --check-untyped-defs)")
print(f"tests:  {'OK' if test_rc == '0' else 'FAIL (rc ' + test_rc + ')'}")
pure = [0, 0]
for k, (c, n) in groups.items():
    print(f"coverage {k:<26} {100 * c / n if n else 0:6.1f} %  ({c}/{n} lines)")
    if "node.py" not in k:
        pure[0] += c
        pure[1] += n
pct = 100 * pure[0] / pure[1] if pure[1] else 0.0
print(f"coverage {'das_core + pure das_ros':<26} {pct:6.1f} %")
ok = ruff_rc == "0" and mypy_rc == "0" and test_rc == "0" and pct >= float(min_cov)
sys.exit(0 if ok else 1)
PYEOF
