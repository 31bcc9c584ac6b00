// Scheduling tests live in this target.
