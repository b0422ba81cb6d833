"""Local stand-ins for the app, Bugster, Secret Manager and the GCE metadata server.

Everything binds 127.0.0.1 on a free port; see ``sandbox.servers``.
"""

from sandbox.servers import (
    SANDBOX_TOKEN,
    WEBHOOK_PATH,
    AppServer,
    BugsterReceiver,
    MetadataFake,
    RecordedRequest,
    Reply,
    SecretManagerFake,
    crc32c,
    google_env,
    isolated_env,
    scrub_env,
)

__all__ = [
    "SANDBOX_TOKEN",
    "WEBHOOK_PATH",
    "AppServer",
    "BugsterReceiver",
    "MetadataFake",
    "RecordedRequest",
    "Reply",
    "SecretManagerFake",
    "crc32c",
    "google_env",
    "isolated_env",
    "scrub_env",
]
