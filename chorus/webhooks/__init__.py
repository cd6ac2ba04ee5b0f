"""Signed webhooks (Standard Webhooks): events, signing, delivery with retries (the SSRF guard: ``chorus.ssrf``).

Flow: a status change is committed -> ``notify.JobNotifier`` builds the event
(the job object, as ``GET /v1/jobs/{id}`` shows it) -> ``send.WebhookSender``
puts it on the webhooks queue -> the ``chorus.deliver_webhook`` task
(``tasks.py``, run by ``chorus webhooks worker``, a CPU-only process) signs
and POSTs it, records the attempt and schedules the retry. Delivery never runs
in the job's task, so a slow or dead receiver cannot fail or delay a job.
"""
