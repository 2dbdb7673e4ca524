"""One module per `cmedgui` subcommand; see cmedgui.cli."""
