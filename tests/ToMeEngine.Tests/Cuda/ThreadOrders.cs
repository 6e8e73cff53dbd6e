using ToMe.Backends.Cuda;

namespace ToMe.Tests.Cuda;

/// <summary>The emulated device's thread orders (TOME_EMU_ORDER, emulator/README.md), public for theory data.</summary>
public enum ThreadOrder { Forward, Reverse, Random }

internal static class ThreadOrders
{
    private const ulong Seed = 0x5eed;

    /// <summary>
    /// Launches this thread queues until disposal run their threads in <paramref name="order"/> on the emulated device
    /// (random with a fixed seed); a real GPU has its own order and ignores this.
    /// </summary>
    public static IDisposable Use(ThreadOrder order)
    {
        if (!CudaDriver.IsEmulated)
            return new Restore(false);
        EmulatorCheckKernels.SetThreadOrder((int)order, Seed);
        return new Restore(true);
    }

    /// <summary>Runs <paramref name="check"/> once in each order.</summary>
    public static void InEach(Action<ThreadOrder> check)
    {
        foreach (var order in Enum.GetValues<ThreadOrder>())
            using (Use(order))
                check(order);
    }

    private sealed class Restore(bool set) : IDisposable
    {
        public void Dispose()
        {
            if (set)
                EmulatorCheckKernels.SetThreadOrder(-1);
        }
    }
}
