"""Research workflow: feature extraction, training, evaluation with the paper's metrics."""
