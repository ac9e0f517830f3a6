"""The retraining loop: customer selection, the run, the gate, the lock, jobs, schedule."""
