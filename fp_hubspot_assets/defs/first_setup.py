"""First set-up (Pull Contacts / Pull Companies / Ignore existing deals): assets and job. Filled by issue 6."""

from typing import Any

from dagster import AssetsDefinition

assets: list[AssetsDefinition] = []
jobs: list[Any] = []
