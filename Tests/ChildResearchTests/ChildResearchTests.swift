// ChildResearch tests live in this target.
