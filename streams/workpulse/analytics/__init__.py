"""SQL over ClickHouse shared by the replay (`workpulse spikes`), the summary and
analysts: per-minute observations of the spike detector, the copycat index."""

from workpulse.analytics.copycat import CopycatHour, WaveUptake, copycat_hours, wave_uptake
from workpulse.analytics.observations import read_observations, time_range

__all__ = [
    "CopycatHour",
    "WaveUptake",
    "copycat_hours",
    "read_observations",
    "time_range",
    "wave_uptake",
]
