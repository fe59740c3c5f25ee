"""Training: losses and regularizers, EMA, the loop, distributed helpers, training state."""
