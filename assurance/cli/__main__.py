"""`python -m assurance.cli`: the same as the `assurance` command."""

from assurance.cli.main import main

raise SystemExit(main())
