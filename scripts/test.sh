#!/usr/bin/env bash
# Installs cmedgui with its test extras and runs the whole suite headless (Xvfb + Mesa for the 3D view).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec xvfb-run -a -s "-screen 0 1600x1000x24" python -m pytest -n 2 -q -p no:cacheprovider "$@"
