// SchoolResolution tests live in this target.
