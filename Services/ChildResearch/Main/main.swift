import ChildResearchService
import ServiceRuntime

// Thin entry point: malloc's arenas capped before any thread starts, the environment parsed
// once into the settings, then the shared runtime.
MatchModelStore.capMallocArenas()
await ServiceMain.run(ChildResearchService.definition(settings:))
