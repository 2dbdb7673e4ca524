#!/usr/bin/env bash
# Installs cmedgui and opens the window on the bundled example and weights.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec cmedgui "$@"
