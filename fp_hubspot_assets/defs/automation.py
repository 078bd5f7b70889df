"""Schedules and sensors that keep HubSpot in sync without anyone pressing a button."""

from dagster import DefaultScheduleStatus, ScheduleDefinition, SensorDefinition

from fp_hubspot_assets.defs.jobs import sync_hubspot

hourly_sync = ScheduleDefinition(
    name="hourly_hubspot_sync",
    job=sync_hubspot,
    cron_schedule="17 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Full diff sync every hour; only changed records cost API requests.",
)

schedules: list[ScheduleDefinition] = [hourly_sync]
sensors: list[SensorDefinition] = []
