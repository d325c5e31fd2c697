from erasekit.cli import main

raise SystemExit(main())
