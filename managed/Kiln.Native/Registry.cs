// The backend registry: which backends loaded (and which plugins were skipped, with the reason),
// and the door to their devices.
using Kiln.Native.Interop;

namespace Kiln.Native;

public sealed record BackendInfo(string Name, string LibraryPath, string RuntimeVersion, int DeviceCount, uint PluginApiVersion);

/// <param name="Malformed">The plugin's own configuration is wrong (KILN_EMU_DEVICES=x): a usage error, not a missing device.</param>
public sealed record PluginSkip(string Path, string Reason, bool Malformed = false);

public sealed class Registry : IDisposable
{
    private const int ShortBytes = (int)kiln_constants.KILN_SHORT_BYTES;
    private const int NameBytes = (int)kiln_constants.KILN_NAME_BYTES;
    private const int PathBytes = (int)kiln_constants.KILN_PATH_BYTES;

    private readonly KilnRegistryHandle _handle;

    private Registry(KilnRegistryHandle handle, IReadOnlyList<BackendInfo> backends, IReadOnlyList<PluginSkip> skipped)
    {
        _handle = handle;
        Backends = backends;
        Skipped = skipped;
    }

    /// <summary>Backends as loaded when the registry was opened.</summary>
    public IReadOnlyList<BackendInfo> Backends { get; }

    /// <summary>Plugin files that were considered and not loaded, with the reason.</summary>
    public IReadOnlyList<PluginSkip> Skipped { get; }

    /// <param name="pluginDir">Where to look for libkiln-&lt;name&gt;.so; null: beside libkiln.so or $KILN_PLUGIN_DIR.</param>
    public static unsafe Registry Open(string? pluginDir = null)
    {
        KilnLibrary.EnsureLoaded();
        KilnRegistryHandle? handle = null;
        try
        {
            KilnException.Check(KilnNative.kiln_registry_create(pluginDir, out handle));
            var backends = new List<BackendInfo>();
            int backendCount = KilnNative.kiln_registry_backend_count(handle);
            for (int i = 0; i < backendCount; i++)
            {
                kiln_backend_info info;
                KilnException.Check(KilnNative.kiln_registry_backend_info(handle, i, &info));
                backends.Add(new BackendInfo(NativeText.FromBuffer(info.name, ShortBytes),
                    NativeText.FromBuffer(info.library_path, PathBytes), NativeText.FromBuffer(info.runtime_version, NameBytes),
                    info.device_count, info.plugin_api_version));
            }
            var skipped = new List<PluginSkip>();
            int skipCount = KilnNative.kiln_registry_skip_count(handle);
            for (int i = 0; i < skipCount; i++)
            {
                kiln_plugin_skip skip;
                KilnException.Check(KilnNative.kiln_registry_skip_info(handle, i, &skip));
                skipped.Add(new PluginSkip(NativeText.FromBuffer(skip.path, PathBytes), NativeText.FromBuffer(skip.reason, PathBytes),
                    skip.status == (int)kiln_status.KILN_INVALID_ARGUMENT));
            }
            return new Registry(handle, backends, skipped);
        }
        catch
        {
            handle?.Dispose();
            throw;
        }
    }

    /// <exception cref="KilnException">KILN_NOT_FOUND when the backend or the device index does not exist.</exception>
    public Device OpenDevice(string backend, int index)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        KilnDeviceHandle? device = null;
        try
        {
            KilnException.Check(KilnNative.kiln_device_open(_handle, backend, index, out device));
            return new Device(device, _handle);
        }
        catch
        {
            device?.Dispose();
            throw;
        }
    }

    /// <summary>Devices opened from this registry keep the native registry alive until they are disposed.</summary>
    public void Dispose() => _handle.Dispose();
}
