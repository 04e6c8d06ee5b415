"""``tunesmith tune``: hyperparameter search with Optuna, every trial a normal run directory."""
