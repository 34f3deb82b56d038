"""SFU worker processes: the request channel, the main process's pool of workers with one
router handle per hearing, and the worker process that composes a hearing's Router with its
recorder. This package sits above `server.sfu` and `server.recording` (ARCHITECTURE 4.3)."""

from .channel import WorkerDiedError, WorkerError
from .pool import RouterHandle, WorkerPool

__all__ = ["RouterHandle", "WorkerDiedError", "WorkerError", "WorkerPool"]
