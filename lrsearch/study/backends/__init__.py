"""The engines a study runs on: `optuna_study` (TPE with pruning, the default) and
`kerastuner_study` (the same bounded space through KerasTuner).
"""
