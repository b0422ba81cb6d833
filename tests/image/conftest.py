"""The image test: collected only when BUGSTER_STEP_IMAGE_TEST is set (``make image-test``).

A plain ``pytest`` (``make test``) ignores this folder, because building the
image installs Debian packages and takes a minute or more. ``make image-test``
sets ``BUGSTER_STEP_IMAGE_TEST=1``; ``BUGSTER_STEP_IMAGE_TEST=require`` also
turns a skip (tools that cannot be installed) into a failure.
"""

from __future__ import annotations

from tests.image.oci import MODE, MODE_VARIABLE, REPORT_FILE, REPORT_KEY

if MODE not in ("1", "require"):
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"image: builds and runs the container image ({MODE_VARIABLE}=1)"
    )


def pytest_terminal_summary(terminalreporter, config):
    lines = config.stash.get(REPORT_KEY, None)
    if not lines:
        return
    terminalreporter.write_sep("=", "bugster-step image")
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(also in {REPORT_FILE})")
