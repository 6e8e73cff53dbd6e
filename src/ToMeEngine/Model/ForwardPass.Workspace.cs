using ToMe.Backends;

namespace ToMe.Model;

internal sealed partial class ForwardPass
{
    /// <summary>
    /// Buffers for batches of up to <see cref="Capacity"/> images, allocated at the unmerged token count and reused as tokens
    /// shrink. Hidden, Qkv and Mlp only feed GEMMs and attention: activations in the pass's storage (half in bf16/fp16);
    /// the residual stream X, sizes, metrics, scores and logits are float32. Each is capacity × (elements per image), in 64 bits; <see cref="BatchLimits"/> has checked the batch against
    /// the backend. Every op is given its batch and token counts explicitly, so a smaller batch uses the front of each buffer.
    /// </summary>
    internal sealed class Workspace : IDisposable
    {
        public int Capacity { get; }
        public DeviceBuffer Images, X, XNext, Hidden, Qkv, Mlp, Metric, Best, BestIndex, Order;
        public DeviceBuffer Size, SizeNext, Groups, GroupsNext, Pooled, Logits;
        public DeviceBuffer ClassAttention, Score, Role, Dest, Counts;
        public float[] InitialSize;
        public int[] InitialGroups, HostRole;

        public Workspace(IBackend backend, ModelConfig config, int batch, Precision precision = Precision.Float32)
        {
            Capacity = batch;
            long allocated = 0;
            DeviceBuffer Float(long perImage) => Own(backend.AllocateFloat(batch * perImage), ref allocated);
            DeviceBuffer Activation(long perImage) => Own(backend.AllocateActivation(batch * perImage, precision), ref allocated);
            DeviceBuffer Int(long perImage) => Own(backend.AllocateInt(batch * perImage), ref allocated);
            long t0 = config.Tokens, c = config.EmbedDim, s = config.ImageSize, setA = (t0 + 1) / 2;
            try
            {
                Images = Float(3 * s * s);
                X = Float(t0 * c);
                XNext = Float(t0 * c);
                Hidden = Activation(t0 * c);
                Qkv = Activation(t0 * 3 * c);
                Mlp = Activation(t0 * config.MlpHidden);
                Metric = Float(t0 * config.HeadDim);
                Best = Float(setA);
                BestIndex = Int(setA);
                Order = Int(setA);
                Size = Float(t0);
                SizeNext = Float(t0);
                Groups = Int(t0);
                GroupsNext = Int(t0);
                Pooled = Float((config.Distilled ? 2 : 1) * c);
                Logits = Float(config.NumClasses);
                ClassAttention = Float(t0);
                Score = Float(t0);
                Role = Int(t0);
                Dest = Int(t0);
                Counts = Int(1);
            }
            catch (Backends.Cuda.CudaOutOfMemoryException e)
            {
                Dispose(); // a partial workspace frees what it got
                throw e.For($"the forward pass's workspace (after {Backends.Cuda.CudaFaults.Bytes(allocated)} of it)");
            }
            catch
            {
                Dispose();
                throw;
            }
            HostRole = new int[batch * t0];
            InitialSize = new float[batch * t0];
            Array.Fill(InitialSize, 1f);
            InitialGroups = new int[batch * t0];
            for (int i = 0; i < InitialGroups.Length; i++)
                InitialGroups[i] = (int)(i % t0);
        }

        private bool swapped;

        public void SwapMerged()
        {
            (X, XNext) = (XNext, X);
            (Size, SizeNext) = (SizeNext, Size);
            (Groups, GroupsNext) = (GroupsNext, Groups);
            swapped = !swapped;
        }

        /// <summary>Every forward starts from the same buffers, so its ops (and a graph that recorded them) are the same.</summary>
        public void Rewind()
        {
            if (swapped)
                SwapMerged();
        }

        private readonly List<DeviceBuffer> owned = [];

        private DeviceBuffer Own(DeviceBuffer buffer, ref long bytes)
        {
            owned.Add(buffer);
            bytes += buffer.Length * 4;
            return buffer;
        }

        public void Dispose()
        {
            foreach (var b in owned)
                b.Dispose();
            owned.Clear();
        }
    }
}
