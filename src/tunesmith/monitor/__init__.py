"""Stage 7: request log, drift, feedback to training data."""
