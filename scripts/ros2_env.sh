# shellcheck shell=bash
# Source me after scripts/ros2_from_pypi.sh, with the same virtual environment active:
#   . scripts/ros2_env.sh [jazzy|kilted]
# The venv is the ament prefix of the PyPI wheels; the colcon install of das_ros is overlaid on it.
_das_distro="${1:-jazzy}"
_das_repo="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  echo "ros2_env: activate the virtual environment that scripts/ros2_from_pypi.sh installed into" >&2
  return 1 2>/dev/null || exit 1
fi
if [ ! -f "$_das_repo/build-ros/$_das_distro/install/local_setup.sh" ]; then
  echo "ros2_env: no build in build-ros/$_das_distro: run bash scripts/ros2_from_pypi.sh $_das_distro" >&2
  return 1 2>/dev/null || exit 1
fi
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
# colcon's local_setup.sh prepends install/das_ros to AMENT_PREFIX_PATH, PYTHONPATH and LD_LIBRARY_PATH.
# It reads unset variables, so `set -u` (CI) is lifted around it.
case $- in *u*) _das_nounset=1; set +u ;; *) _das_nounset= ;; esac
COLCON_CURRENT_PREFIX="$_das_repo/build-ros/$_das_distro/install" . "$_das_repo/build-ros/$_das_distro/install/local_setup.sh"
[ -n "$_das_nounset" ] && set -u
unset _das_distro _das_repo _das_nounset
