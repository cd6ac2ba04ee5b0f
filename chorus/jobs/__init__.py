"""Jobs: the API's view of a job and the worker's claim/finish transitions, both torch-free.

Modules, one job each:
- schemas: the job's JSON: what a client sends (``JobInput``), what is stored (``ResolvedInput``), what it reads
- submit: resolve the input against the model's limits, insert the row, enqueue its id
- queries: read and cancel a tenant's jobs
- view: the one serialisation of a job (API responses and webhook payloads)
- claim: the worker's side: claim, batch mates, progress, finish
- recovery: take over jobs whose worker died
- requeue: re-send the message of jobs the broker lost
Why an operation was refused: ``chorus.errors``.
"""
