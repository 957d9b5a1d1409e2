"""The chosen schedule as a versioned JSON file (`spec.ScheduleSpec`, `load_schedule`; the
file's format in `document`), the way from it back to a Keras optimizer, and the check
that a fit runs the steps the schedule was sized for (`fit_check`).
"""
