from egmt.cli import main

raise SystemExit(main())
