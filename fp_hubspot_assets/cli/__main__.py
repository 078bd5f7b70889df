"""`python -m fp_hubspot_assets.cli ...` = `fp-hubspot ...`"""

from fp_hubspot_assets.cli import main

raise SystemExit(main())
