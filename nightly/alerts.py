"""Alerts: a short message about a run that failed or looks wrong, to the log and a webhook.

The webhook takes Slack's incoming-webhook JSON (`{"text": ...}`), which most chat tools accept.
Its URL is a secret: it is never logged, and a webhook that is down never fails the pipeline.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

from nightly.ledger import ERROR, FAILED, REFUSED, WARNED, WARNING, RunRecord

log = logging.getLogger("moovitamix.nightly")

MAX_FINDING_LINES = 8
WEBHOOK_TIMEOUT_SECONDS = 10


def compose(record: RunRecord, alert_on_warning: bool, report: Path | None = None) -> str | None:
    """The alert for a finished run, or None when there is nothing to tell; it ends with the
    path of the run `report` when there is one."""
    if record.status not in (FAILED, REFUSED) and not (
        record.status == WARNED and alert_on_warning
    ):
        return None
    headline = f"MooVitamix nightly run {record.run_id}: {record.status.upper()}"
    if record.failing_step:
        headline += f" at step {record.failing_step}"
    if record.exit_code is not None:
        headline += f" (exit {record.exit_code})"
    headline += "; analysts' file published" if record.published_at else "; nothing published"
    lines = [headline]
    findings = record.findings_at(ERROR) + record.findings_at(WARNING)
    if record.error_message and not record.findings_at(ERROR):  # else it sums up the findings
        lines.append(record.error_message)
    lines += [f"{f.level.upper()} {f.message}" for f in findings[:MAX_FINDING_LINES]]
    if len(findings) > MAX_FINDING_LINES:
        lines.append(f"... and {len(findings) - MAX_FINDING_LINES} more (ops.run_findings)")
    if record.status == FAILED and record.free_bytes is not None:
        lines.append(f"Free space in the data folder: {record.free_bytes / 1e6:,.1f} MB")
    if record.status in (FAILED, REFUSED) and record.action:
        lines.append(f"What to do: {record.action}")
    if report:
        lines.append(f"Run report: {report.resolve()}")
    return "\n".join(lines)


def send(text: str, webhook_url: str | None) -> bool:
    """Log the alert, then post it to the webhook if one is configured. True if it was posted."""
    log.warning("ALERT %s", text)
    if not webhook_url:
        log.info("no NIGHTLY__ALERT_WEBHOOK_URL configured: the alert is in the log only")
        return False
    try:
        request = urllib.request.Request(
            webhook_url,
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS):
            return True
    except Exception as exc:  # a webhook that is down must not fail the run
        # Only the kind of error: the messages of some (a bad URL, a redirect) contain the URL.
        reason = (
            f"HTTP {exc.code}" if isinstance(exc, urllib.error.HTTPError) else type(exc).__name__
        )
        log.error("could not post the alert to the webhook (%s); it is in the log", reason)
        return False
