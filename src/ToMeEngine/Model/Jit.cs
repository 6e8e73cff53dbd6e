using System.Runtime.CompilerServices;

namespace ToMe;

/// <summary>
/// How the code a forward pass runs is compiled: <c>[MethodImpl(Jit.Hot)]</c> = AggressiveOptimization, fully optimized on
/// the first call.
/// </summary>
/// <remarks>
/// Under tiered compilation a method starts unoptimized and is compiled again, on a background thread, after 30 calls and
/// a pause in new compilations. A forward pass calls a few hundred methods (ops, their parallel bodies, the GEMM's tiling
/// and the thread team) a few to a few thousand times each, so the first forwards of a process ran them unoptimized and
/// then shared the cores with their recompilation: batch-1 latency of the first ~20 forwards was 1.5–2× what it is once
/// everything is compiled. Every method on the forward path is therefore marked, lambdas and local functions included
/// (each is a method of its own). The cost is dynamic PGO on these methods, which measured within noise in steady state:
/// their time is in loops over vectors, not in the calls PGO would devirtualize.
/// </remarks>
internal static class Jit
{
    public const MethodImplOptions Hot = MethodImplOptions.AggressiveOptimization;
}
