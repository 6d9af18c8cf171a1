// Which devices a command runs on (--backend, --device) and the up-front check of every test's
// parameters against them, so bad input is refused before anything runs.
using Kiln.Core.Plans;
using Kiln.Native;

namespace Kiln.Core.Runs;

public static class Targets
{
    /// <summary>A plugin refused its own configuration ("KILN_EMU_DEVICES: 'x': ..."): exit 2 naming the variable.</summary>
    public static void ThrowIfMalformed(Registry registry)
    {
        if (registry.Skipped.FirstOrDefault(s => s.Malformed) is not { } bad) return;
        var colon = bad.Reason.IndexOf(": ", StringComparison.Ordinal);
        throw colon > 0
            ? new UsageException(bad.Reason[..colon], bad.Reason[(colon + 2)..])
            : new UsageException(Path.GetFileName(bad.Path), bad.Reason);
    }

    /// <summary>Opens the selected devices: every device of every (or the named) backend.</summary>
    public static IReadOnlyList<Device> Open(Registry registry, string? backend, int? deviceIndex)
    {
        ThrowIfMalformed(registry);
        var backends = registry.Backends.ToList();
        if (backend != null)
        {
            backends = backends.Where(b => b.Name.Equals(backend, StringComparison.OrdinalIgnoreCase)).ToList();
            if (backends.Count == 0)
            {
                var skipped = registry.Skipped.Count == 0 ? ""
                    : $"; skipped: {string.Join("; ", registry.Skipped.Select(s => $"{Path.GetFileName(s.Path)}: {s.Reason}"))}";
                throw new UsageException(OptionNames.Backend,
                    $"no backend '{backend}' (loaded: {string.Join(", ", registry.Backends.Select(b => b.Name))}{skipped})");
            }
        }
        if (deviceIndex is { } wanted)
        {
            if (wanted < 0) throw new UsageException(OptionNames.Device, $"{wanted} is negative");
            var without = backends.Where(b => wanted >= b.DeviceCount).ToList();
            if (without.Count == backends.Count)
                throw new UsageException(OptionNames.Device,
                    $"no device {wanted} ({string.Join(", ", backends.Select(b => $"{b.Name} has {b.DeviceCount}"))})");
            backends = backends.Except(without).ToList();
        }

        var devices = new List<Device>();
        try
        {
            foreach (var b in backends)
            {
                var indexes = deviceIndex is { } only ? [only] : Enumerable.Range(0, b.DeviceCount);
                foreach (var index in indexes) devices.Add(registry.OpenDevice(b.Name, index));
            }
        }
        catch
        {
            foreach (var d in devices) d.Dispose();
            throw;
        }
        if (devices.Count == 0)
            throw new UsageException(backend != null ? OptionNames.Backend : OptionNames.Device, "no device to run on");
        return devices;
    }

    /// <summary>Every device test of the plan on every device, in plan order, parameters validated (the network tests run once per node: NetworkTests).</summary>
    public static IReadOnlyList<PlannedTest> Plan(Plan plan, IReadOnlyList<Device> devices) =>
        plan.Tests.Where(spec => !Catalog.IsNetwork(spec.Test)).SelectMany(spec => devices.Select(device => Prepare(spec, device))).ToList();

    /// <summary>
    /// The test's parameters for this device, checked by the backend (kiln_test_validate). An
    /// invalid value is a UsageException naming the option; a test the backend lacks is skipped.
    /// </summary>
    public static PlannedTest Prepare(TestSpec spec, Device device)
    {
        var p = spec.ToParams(device.Info);
        var where = $"{spec.Key} on {device.Info.Backend} device {device.Info.Index}";
        // The plain case first, in the user's own units; the backend's check covers the rest.
        if (p.SizeBytes > device.Info.AvailableMemoryBytes)
            throw new UsageException(OptionNames.Size,
                $"{ByteSize.Format(p.SizeBytes)} is larger than available memory ({ByteSize.Format(device.Info.AvailableMemoryBytes)})");
        try
        {
            device.Validate(p);
            return new PlannedTest(spec, device, p);
        }
        catch (KilnException e) when (e.Status == KilnStatus.Unsupported)
        {
            return new PlannedTest(spec, device, p) { Unsupported = e.Message };
        }
        catch (KilnException e) when (e.Status == KilnStatus.InvalidArgument)
        {
            throw new UsageException(OptionNames.ForNativeText(e.Message) ?? where, $"{e.Message} ({where})");
        }
    }
}
