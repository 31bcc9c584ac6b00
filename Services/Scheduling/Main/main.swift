import SchedulingService
import ServiceRuntime

// Thin entry point: the environment parsed once into the settings, then the shared runtime.
await ServiceMain.run(SchedulingService.definition(settings:))
