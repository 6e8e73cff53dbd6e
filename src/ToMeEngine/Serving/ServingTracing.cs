using System.Diagnostics;

namespace ToMe.Serving;

/// <summary>
/// The <see cref="ActivitySource"/> <c>"ToMeEngine"</c> of the serving layer. Each request to a <see cref="BatchingClassifier"/>
/// is an activity <c>tome.classify</c> (a child of the caller's current activity, e.g. the HTTP request's), from admission
/// to its answer; each forward pass is an activity <c>tome.batch</c>, linked to the requests it carried (a batch serves
/// several traces, so it is a root with links rather than anyone's child). Enable with OpenTelemetry
/// (<c>AddSource("ToMeEngine")</c>) or any <see cref="ActivityListener"/>; without a listener nothing is allocated.
/// </summary>
public static class ServingTracing
{
    /// <summary>The source's name (the same as the meter's).</summary>
    public const string SourceName = "ToMeEngine";

    /// <summary>The source every classifier reports to.</summary>
    public static ActivitySource Source { get; } = new(SourceName, typeof(ServingTracing).Assembly.GetName().Version?.ToString());
}
