"""The values settings may take, shared by the CLI and the job.

Kept apart and import-free so that the CLI can declare its options without
loading the probe, the webhook and requests' machinery (see `make bench`).
"""

STATES = ("success", "in_progress", "cancelled", "error")
REFS = ("auto", "commit", "branch")
DEFAULT_API_URL = "https://api.bugster.app"
