"""`python -m fp_hubspot_assets.sandbox --port 8765 --state hubspot.db`"""

from .server import main

main()
