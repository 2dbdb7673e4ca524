# Sourced by run.sh and test.sh: system libraries for Qt/OpenGL, then a venv with cmedgui in it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES="xvfb xauth libgl1 libgl1-mesa-dri libegl1 libglx-mesa0 libopengl0 libxkbcommon0 \
libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
libxcb-xinerama0 libxcb-xkb1 libxcb-shape0 libxcb-randr0 libxcb-xfixes0 libxcb-sync1 libxrender1 \
libdbus-1-3 libfontconfig1 libglib2.0-0 libnss3 libxcomposite1 libxdamage1 libxrandr2 libxtst6 \
libxi6 libasound2"
# Pinned so that a CPU-only machine does not pull a multi-GB CUDA build.
TORCH="torch==2.13.0"

missing=$(dpkg-query -W -f='${Status} ${Package}\n' $APT_PACKAGES 2>&1 | grep -v '^install ok installed' || true)
if [ -n "$missing" ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $APT_PACKAGES >/dev/null
fi

VENV=${CMEDGUI_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
# The install is editable, so code changes need none; what it installs changes only with
# pyproject.toml, the torch pin or the checkout's place: the stamp holds their hash.
STAMP="$VENV/.cmedgui-install"
wanted=$( (cat pyproject.toml; echo "$TORCH"; pwd) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$wanted" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "$TORCH"
  python -m pip install -q -e ".[test]"
  echo "$wanted" > "$STAMP"
else
  echo "cmedgui: $VENV is up to date (pyproject.toml and $TORCH unchanged): nothing to install" >&2
fi
