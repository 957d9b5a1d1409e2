"""The chosen schedule as a versioned JSON file (`spec.ScheduleSpec`, `load_schedule`),
and the way from it back to a Keras optimizer.
"""
