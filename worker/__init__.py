"""The queue shell: a Celery worker that claims jobs, batches them, runs the engine and uploads videos."""
