from wirestack.cli import main

raise SystemExit(main())
