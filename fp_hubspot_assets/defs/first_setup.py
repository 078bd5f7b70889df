"""First set-up (Pull Contacts / Pull Companies / Ignore existing deals): assets and job. Filled by issue 6."""

from dagster import AssetsDefinition, JobDefinition, UnresolvedAssetJobDefinition

assets: list[AssetsDefinition] = []
jobs: list[JobDefinition | UnresolvedAssetJobDefinition] = []
