"""Suite-wide pytest configuration: each area keeps its fixtures in fixtures_<area>.py."""

pytest_plugins = [
    "fp_hubspot_assets_tests.fixtures_sandbox",
    "fp_hubspot_assets_tests.fixtures_sap",
    "fp_hubspot_assets_tests.fixtures_state",
    "fp_hubspot_assets_tests.fixtures_mapping",
    "fp_hubspot_assets_tests.fixtures_sync",
    "fp_hubspot_assets_tests.fixtures_browser",
]
