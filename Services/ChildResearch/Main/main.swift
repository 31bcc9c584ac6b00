import ChildResearchService
import EncompassModels
import ServiceRuntime

// Thin entry point: configuration from the environment, then the shared runtime.
await ServiceMain.run(ChildResearchService.definition, service: .childResearch)
