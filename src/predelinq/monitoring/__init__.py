"""Monitoring: what was served (the prediction log), how far the population has moved from a
model's training rows (reference profiles, PSI drift), how the model in service performs on
matured labels, what makes `check` retrain (triggers), and a replay of history that shows
whether retraining pays (backtest)."""
