// The native library and its backend registry for the CLI's commands: opened on first use (a
// command that needs no device never loads a plugin) and closed with the host.
using Kiln.Native;

namespace Kiln.Cli;

/// <summary>The native library and its backend registry, opened on first use and closed with the host.</summary>
public sealed class NativeSession : IDisposable
{
    private Registry? _registry;

    public Registry Registry
    {
        get
        {
            KilnLibrary.EnsureLoaded();
            if (_registry is null)
            {
                var opened = Registry.Open();
                try
                {
                    Kiln.Core.Runs.Targets.ThrowIfMalformed(opened);
                }
                catch
                {
                    opened.Dispose();
                    throw;
                }
                _registry = opened;
            }
            return _registry;
        }
    }

    public void Dispose() => _registry?.Dispose();
}
