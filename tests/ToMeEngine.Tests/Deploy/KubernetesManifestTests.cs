using System.Text.RegularExpressions;
using ToMe.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace ToMe.Tests.Deploy;

/// <summary>
/// deploy/kubernetes parses as YAML and holds together: a Deployment whose probes hit the Open Inference Protocol's
/// health endpoints on the port the server listens on, a Service selecting its pods, an autoscaler scaling it, and
/// container arguments that `tome serve` accepts.
/// </summary>
public sealed partial class KubernetesManifestTests
{
    private static List<YamlMappingNode> Documents()
    {
        if (RepoData.Root is null)
            Assert.Skip("needs the checkout around the test binaries (deploy/)");
        var documents = new List<YamlMappingNode>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoData.Root, "deploy", "kubernetes"), "*.yaml"))
        {
            var stream = new YamlStream();
            using (var reader = new StreamReader(file))
                stream.Load(reader);
            documents.AddRange(stream.Documents.Select(d => (YamlMappingNode)d.RootNode));
        }
        return documents;
    }

    private static YamlNode At(YamlNode node, params object[] path)
    {
        foreach (var step in path)
            node = step is int i ? ((YamlSequenceNode)node).Children[i] : ((YamlMappingNode)node).Children[new YamlScalarNode((string)step)];
        return node;
    }

    private static string Text(YamlNode node, params object[] path) => ((YamlScalarNode)At(node, path)).Value!;

    private static YamlMappingNode Kind(List<YamlMappingNode> documents, string kind) => Assert.Single(documents, d => Text(d, "kind") == kind);

    [Fact]
    public void DeploymentServiceAndAutoscalerFitTogether()
    {
        var documents = Documents();
        var deployment = Kind(documents, "Deployment");
        var service = Kind(documents, "Service");
        var autoscaler = Kind(documents, "HorizontalPodAutoscaler");
        Assert.Equal("autoscaling/v2", Text(autoscaler, "apiVersion"));

        var container = At(deployment, "spec", "template", "spec", "containers", 0);
        var args = ((YamlSequenceNode)At(container, "args")).Children.Select(a => ((YamlScalarNode)a).Value!).ToList();
        Assert.Equal("serve", args[0]);
        string Arg(string name) => args[args.IndexOf(name) + 1];
        Assert.Equal("0.0.0.0", Arg("--host")); // reachable from the Service, not only from the pod
        var port = At(container, "ports", 0);
        Assert.Equal(Arg("--port"), Text(port, "containerPort"));
        var portName = Text(port, "name");
        Assert.Equal("1", Text(container, "resources", "limits", "nvidia.com/gpu")); // one engine per pod and GPU

        Assert.Equal("/v2/health/ready", Text(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("/v2/health/ready", Text(container, "startupProbe", "httpGet", "path"));
        Assert.Equal("/v2/health/live", Text(container, "livenessProbe", "httpGet", "path"));
        foreach (var probe in new[] { "readinessProbe", "startupProbe", "livenessProbe" })
            Assert.Equal(portName, Text(container, probe, "httpGet", "port"));

        var podLabels = (YamlMappingNode)At(deployment, "spec", "template", "metadata", "labels");
        foreach (var (key, value) in (YamlMappingNode)At(service, "spec", "selector"))
            Assert.Equal(((YamlScalarNode)value).Value, Text(podLabels, ((YamlScalarNode)key).Value!));
        foreach (var (key, value) in (YamlMappingNode)At(deployment, "spec", "selector", "matchLabels"))
            Assert.Equal(((YamlScalarNode)value).Value, Text(podLabels, ((YamlScalarNode)key).Value!));
        Assert.Equal(portName, Text(service, "spec", "ports", 0, "targetPort"));

        Assert.Equal("Deployment", Text(autoscaler, "spec", "scaleTargetRef", "kind"));
        Assert.Equal(Text(deployment, "metadata", "name"), Text(autoscaler, "spec", "scaleTargetRef", "name"));
        Assert.True(int.Parse(Text(autoscaler, "spec", "minReplicas")) <= int.Parse(Text(autoscaler, "spec", "maxReplicas")));
    }

    [Fact(Timeout = 60_000)]
    public void TheContainerArgumentsAreOptionsOfTomeServe()
    {
        var container = At(Kind(Documents(), "Deployment"), "spec", "template", "spec", "containers", 0);
        var options = ((YamlSequenceNode)At(container, "args")).Children.Select(a => ((YamlScalarNode)a).Value!).Where(a => a.StartsWith("--")).ToList();
        var (code, help, _) = TomeProcess.Run("serve", "--help");
        Assert.Equal(0, code);
        var known = OptionName().Matches(help).Select(m => m.Value).ToHashSet();
        Assert.All(options, o => Assert.Contains(o, known));
    }

    [GeneratedRegex(@"--[a-z][a-z0-9-]*")]
    private static partial Regex OptionName();
}
