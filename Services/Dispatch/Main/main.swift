import DispatchService
import EncompassModels
import ServiceRuntime

// Thin entry point: configuration from the environment, then the shared runtime.
await ServiceMain.run(DispatchService.definition, service: .dispatch)
