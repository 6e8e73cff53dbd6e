using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using ToMe.Imaging;
using ToMe.Model;

// ONNX Runtime's side of bench/compare_ort.py: times one exported ViT on the CPU execution provider the way
// `tome bench` times the engine (inputs prepared, warm-up, timed runs, first quarter discarded, median), or runs it
// once on a given input and writes the logits for the script's agreement check, or classifies a labelled folder of
// images (decoded and preprocessed by ToMeEngine, as `tome eval` does, so both engines see the same tensors) and writes
// the logits of every image for bench/accuracy_ort.py.
//
//   ortbench --onnx MODEL.onnx [--batch 16] [--threads 2] [--runs 8] [--warmup 2] [--json]
//   ortbench --onnx MODEL.onnx --batch B --input IN.f32 --logits OUT.f32      (raw little-endian float32)
//   ortbench --onnx MODEL.onnx --batch B --eval FOLDER --model MODEL_DIR --logits OUT.f32
//       (FOLDER/labels.csv: filename,class_index,...; MODEL_DIR gives the preprocessing; OUT: [images, classes] in
//       labels.csv order; a last partial batch is padded, which a static-batch graph needs)
var inv = CultureInfo.InvariantCulture;
var opts = new Dictionary<string, string>();
var flags = new HashSet<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] is "--json")
        flags.Add(args[i]);
    else if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length)
        opts[args[i]] = args[++i];
    else
    {
        Console.Error.WriteLine($"ortbench: unexpected argument '{args[i]}'");
        return 2;
    }
}
if (!opts.TryGetValue("--onnx", out var modelPath))
{
    Console.Error.WriteLine("usage: ortbench --onnx MODEL.onnx [--batch N] [--threads N] [--runs N] [--warmup N] [--json] [--input IN.f32 --logits OUT.f32] [--eval FOLDER --model MODEL_DIR --logits OUT.f32]");
    return 2;
}
int Int(string name, int fallback) => opts.TryGetValue(name, out var v) ? int.Parse(v, inv) : fallback;
int batch = Int("--batch", 16), threads = Int("--threads", 2), runs = Int("--runs", 8), warmup = Int("--warmup", 2);
if (batch < 1 || threads < 1 || runs < 1 || warmup < 0)
{
    Console.Error.WriteLine("ortbench: --batch, --threads and --runs must be >= 1, --warmup >= 0");
    return 2;
}

using var session = new InferenceSession(modelPath, new SessionOptions
{
    GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    IntraOpNumThreads = threads,
    InterOpNumThreads = 1,
});
var (inputName, inputMeta) = session.InputMetadata.Single() is var kv ? (kv.Key, kv.Value) : default;
var dims = inputMeta.Dimensions;
if (dims.Length != 4 || dims[1] != 3 || dims[2] <= 0 || dims[3] <= 0)
{
    Console.Error.WriteLine($"ortbench: {modelPath}: input '{inputName}' has shape [{string.Join(", ", dims)}], expected [B, 3, S, S]");
    return 2;
}
if (dims[0] > 0 && dims[0] != batch)
{
    Console.Error.WriteLine($"ortbench: {modelPath} was exported for batch {dims[0]}, not {batch}");
    return 2;
}
long[] shape = [batch, 3, dims[2], dims[3]];
var images = new float[batch * 3 * dims[2] * dims[3]];
if (opts.TryGetValue("--input", out var inputPath))
{
    var bytes = File.ReadAllBytes(inputPath);
    if (bytes.Length != images.Length * sizeof(float))
    {
        Console.Error.WriteLine($"ortbench: {inputPath} holds {bytes.Length} bytes, [{string.Join(", ", shape)}] float32 needs {images.Length * sizeof(float)}");
        return 2;
    }
    Buffer.BlockCopy(bytes, 0, images, 0, bytes.Length);
}
else
{
    // The same inputs as `tome bench`.
    var rng = new Random(1234);
    for (int i = 0; i < images.Length; i++)
        images[i] = (float)(rng.NextDouble() * 2 - 1);
}

using var input = OrtValue.CreateTensorValueFromMemory(images, shape);
var inputNames = new[] { inputName };
var inputs = new[] { input };
var outputNames = new[] { session.OutputMetadata.Keys.First() };
using var runOptions = new RunOptions();

float[] Run()
{
    using var outputs = session.Run(runOptions, inputNames, inputs, outputNames);
    return outputs[0].GetTensorDataAsSpan<float>().ToArray();
}

if (opts.TryGetValue("--eval", out var folder))
{
    if (!opts.TryGetValue("--model", out var modelDir) || !opts.TryGetValue("--logits", out var evalLogitsPath))
    {
        Console.Error.WriteLine("ortbench: --eval needs --model MODEL_DIR (for the preprocessing) and --logits OUT.f32");
        return 2;
    }
    var labelsCsv = Path.Combine(folder, "labels.csv");
    if (!File.Exists(labelsCsv))
    {
        Console.Error.WriteLine($"ortbench: {labelsCsv}: no such file");
        return 2;
    }
    var files = File.ReadLines(labelsCsv).Skip(1).Where(l => l.Length > 0).Select(l => Path.Combine(folder, l.Split(',')[0])).ToArray();
    var preprocessor = new Preprocessor(ModelLoader.Load(modelDir).Config.Preprocess);
    int per = images.Length / batch;
    using var all = File.Create(evalLogitsPath);
    for (int start = 0; start < files.Length; start += batch)
    {
        int count = Math.Min(batch, files.Length - start);
        Array.Clear(images);
        Parallel.For(0, count, i => preprocessor.Run(ImageDecoder.Decode(files[start + i])).CopyTo(images, i * per));
        var logits = Run();
        all.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(logits.AsSpan(0, logits.Length / batch * count)));
    }
    return 0;
}

if (opts.TryGetValue("--logits", out var logitsPath))
{
    var logits = Run();
    var raw = new byte[logits.Length * sizeof(float)];
    Buffer.BlockCopy(logits, 0, raw, 0, raw.Length);
    File.WriteAllBytes(logitsPath, raw);
    return 0;
}

for (int i = 0; i < warmup; i++)
    Run();
var times = new double[runs];
for (int i = 0; i < runs; i++)
{
    long start = Stopwatch.GetTimestamp();
    Run();
    times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
}
var kept = times.Skip(runs / 4).Order().ToArray();
double median = kept[kept.Length / 2];
var result = new
{
    engine = "onnxruntime",
    version = OrtEnv.Instance().GetVersionString(),
    model = Path.GetFileName(modelPath),
    threads,
    batch,
    ms_per_batch = median,
    ms_min = kept[0],
    images_per_second = batch / (median / 1000),
};
Console.WriteLine(flags.Contains("--json")
    ? JsonSerializer.Serialize(result)
    : string.Create(inv, $"{result.model}: onnxruntime {result.version}, {threads} threads, batch {batch}: {median:F2} ms/batch, {result.images_per_second:F1} images/s"));
return 0;
