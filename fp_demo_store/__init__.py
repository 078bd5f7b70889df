"""The demo store: a generated SAP Business One + FocusPoint database with realistic mess (``generate``) and
a live store for the sensors (``simulate``). Tooling beside the product: ``fp_hubspot_assets`` never imports it."""
