"""Jobs: the API's view of a job and the worker's claim/finish transitions, both torch-free."""
