import DispatchService
import ServiceRuntime

// Thin entry point: the environment parsed once into the settings, then the shared runtime.
await ServiceMain.run(DispatchService.definition(settings:))
