"""The taxonomy's stable topic ids (definitions: TAXONOMY.md). The one list of them."""

from __future__ import annotations

TOPICS: tuple[str, ...] = (
    "resignation",
    "salary",
    "career_meaning",
    "harassment",
    "job_search",
    "layoffs",
    "remote_work",
    "burnout",
    "labor_action",
)
