using ToMe.Backends.Cpu;
using ToMe.Tests.Support;

namespace ToMe.Tests.Model;

/// <summary>Every case of every golden fixture on the CPU backend: logits, merge decisions, groups, sizes, hidden states.</summary>
public class FixtureForwardTests
{
    public static TheoryData<string, string> Cases() => Fixtures.AllCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void CpuMatchesTimmAndOfficialToMe(string model, string caseKey)
    {
        using var backend = new CpuBackend();
        GoldenCase.Check(backend, model, caseKey, logitsTolerance: 1e-4, hiddenAtol: 1e-4, hiddenRtol: 1e-5);
    }
}
