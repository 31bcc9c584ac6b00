import SchedulingService
import EncompassModels
import ServiceRuntime

// Thin entry point: configuration from the environment, then the shared runtime.
await ServiceMain.run(SchedulingService.definition, service: .scheduling)
