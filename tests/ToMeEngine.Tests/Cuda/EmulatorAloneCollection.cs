namespace ToMe.Tests.Cuda;

/// <summary>
/// Tests whose timing on the emulated device matters (a batch taken ahead while a forward runs), and tests that start
/// `tome` processes running the emulated device: the emulator runs every CUDA thread on the CPU with as many host threads
/// as cores, so side by side they oversubscribe a 2-core machine many times over. They run alone, after the parallel tests.
/// </summary>
[CollectionDefinition(nameof(EmulatorAloneCollection), DisableParallelization = true)]
public sealed class EmulatorAloneCollection;
