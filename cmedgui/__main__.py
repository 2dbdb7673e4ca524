from cmedgui.cli import main

raise SystemExit(main())
