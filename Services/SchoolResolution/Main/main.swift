import SchoolResolutionService
import EncompassModels
import ServiceRuntime

// Thin entry point: configuration from the environment, then the shared runtime.
await ServiceMain.run(SchoolResolutionService.definition, service: .schoolResolution)
