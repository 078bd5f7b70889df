"""`python -m hubspot_sandbox --port 8765 --state hubspot.db`"""

from .server import main

main()
