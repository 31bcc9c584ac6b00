// Dispatch tests live in this target.
