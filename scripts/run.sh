#!/usr/bin/env bash
# Installs cmedgui and opens the window on the bundled example and weights.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
status=0
cmedgui "$@" || status=$?
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}${QT_QPA_PLATFORM:-}" ]; then
  echo "cmedgui is installed in $VENV: '. $VENV/bin/activate' puts it on your PATH" >&2
fi
exit "$status"
