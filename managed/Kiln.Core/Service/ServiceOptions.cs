// The service's configuration: /etc/kiln/kiln.yaml (or --config FILE), then environment variables
// (KILN_ + the key path with "__" between levels: KILN_CHECK__INTERVAL=10m), through
// Microsoft.Extensions.Configuration. Validated at start: an unknown key, a bad value or a value out
// of range is one UsageException naming the file and line (or the variable) and the key, so the
// service exits 2 before it tells systemd it is ready. No file: the safe defaults (a health check
// every 5 minutes, no burns). scripts/systemd/kiln.yaml documents every key.
using System.Globalization;
using Kiln.Core.Profiles;
using Microsoft.Extensions.Configuration;
using YamlDotNet.RepresentationModel;

namespace Kiln.Core.Service;

/// <summary>A daily local-time window "02:00-05:00" (may wrap midnight), or always.</summary>
public sealed record DailyWindow(TimeSpan From, TimeSpan To, bool Always)
{
    public static DailyWindow AllDay { get; } = new(TimeSpan.Zero, TimeSpan.Zero, true);

    public bool Contains(DateTime local)
    {
        if (Always) return true;
        var t = local.TimeOfDay;
        return From <= To ? t >= From && t < To : t >= From || t < To;
    }

    /// <summary>"02:00-05:00", or "always".</summary>
    public static DailyWindow? TryParse(string text)
    {
        var s = text.Trim();
        if (s.Equals("always", StringComparison.OrdinalIgnoreCase)) return AllDay;
        var parts = s.Split('-');
        if (parts.Length != 2) return null;
        if (!TimeSpan.TryParseExact(parts[0].Trim(), @"hh\:mm", CultureInfo.InvariantCulture, out var from)
            || !TimeSpan.TryParseExact(parts[1].Trim(), @"hh\:mm", CultureInfo.InvariantCulture, out var to)
            || from == to)
            return null;
        return new DailyWindow(from, to, false);
    }

    public override string ToString() => Always ? "always" : $"{From:hh\\:mm}-{To:hh\\:mm}";
}

public sealed record CheckOptions(TimeSpan Interval, string Profile);

/// <param name="Every">At most one completed burn this often.</param>
/// <param name="RetestEvery">While a component waits for a passing burn to clear it, a burn this often instead.</param>
public sealed record BurnOptions(bool Enabled, string Plan, string Profile, DailyWindow Window, TimeSpan Every,
    string Backend, TimeSpan IdlePoll, TimeSpan RetestEvery);

public sealed record HistoryOptions(int RetentionDays, int MaxMib);

public sealed record ApiOptions(bool Enabled, string Listen)
{
    /// <summary>A unix socket path ("unix:/var/lib/kiln/kiln.sock"), or null for TCP.</summary>
    public string? UnixSocket => Listen.StartsWith("unix:", StringComparison.Ordinal) ? Listen[5..] : null;
}

public sealed record ServiceOptions
{
    public const string DefaultConfigPath = "/etc/kiln/kiln.yaml";
    public const string DefaultStateDir = "/var/lib/kiln";
    public const string EnvironmentPrefix = "KILN_";

    public required string StateDir { get; init; }
    /// <summary>Filesystem root holding sys/ and proc/ ("/" on a node; a fixture in tests and containers).</summary>
    public string SysfsRoot { get; init; } = "/";
    /// <summary>A kernel log file to follow instead of /dev/kmsg (null: /dev/kmsg).</summary>
    public string? KernelLog { get; init; }
    public required CheckOptions Check { get; init; }
    public required BurnOptions Burn { get; init; }
    public required HistoryOptions History { get; init; }
    /// <summary>Where kiln.prom is written (node_exporter's textfile collector reads it).</summary>
    public required string PrometheusTextfile { get; init; }
    public required ApiOptions Api { get; init; }
    /// <summary>Where the configuration came from, for the log: a file or "defaults".</summary>
    public string Source { get; init; } = "defaults";
    /// <summary>Warnings to log at start (an API bound to every interface ...).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    public string DatabasePath => Path.Combine(StateDir, "kiln.db");

    // Every key, as it is written in the file ("check.interval"): the one list the file is checked against.
    private static readonly Dictionary<string, string[]> Sections = new(StringComparer.Ordinal)
    {
        [""] = ["state_dir", "sysfs_root", "kernel_log", "check", "burn", "history", "prometheus", "api"],
        ["check"] = ["interval", "profile"],
        ["burn"] = ["enabled", "plan", "profile", "window", "every", "retest_every", "backend", "idle_poll"],
        ["history"] = ["retention_days", "max_mib"],
        ["prometheus"] = ["textfile"],
        ["api"] = ["enabled", "listen"],
    };

    /// <summary>
    /// Reads <paramref name="configPath"/> (null: /etc/kiln/kiln.yaml when it exists, else the defaults),
    /// then the environment; <paramref name="stateDirOverride"/> (--state-dir) wins over both.
    /// </summary>
    public static ServiceOptions Load(string? configPath, string? stateDirOverride, IDictionary<string, string?>? environment = null)
    {
        var path = configPath ?? (File.Exists(DefaultConfigPath) ? DefaultConfigPath : null);
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var lines = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (path is not null)
        {
            var yaml = YamlConfig.Load(path, "--config");
            Flatten(yaml, yaml.Root, "", values, lines);
        }
        var env = environment ?? System.Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
        var prefixed = env.Where(e => e.Key.StartsWith(EnvironmentPrefix, StringComparison.Ordinal))
            .ToDictionary(e => e.Key[EnvironmentPrefix.Length..].Replace("__", ":"), e => e.Value, StringComparer.OrdinalIgnoreCase);
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(values)
            .AddInMemoryCollection(prefixed)   // the environment, as AddEnvironmentVariables("KILN_") maps it
            .Build();
        var r = new Reader(config, lines, prefixed.Keys.ToHashSet(StringComparer.OrdinalIgnoreCase), path);

        var stateDir = stateDirOverride ?? r.Text("state_dir") ?? DefaultStateDir;
        var root = r.Text("sysfs_root") ?? "/";
        if (!Directory.Exists(root)) throw r.Error("sysfs_root", $"{root} is not a directory");
        var kernelLog = r.Text("kernel_log");
        var burnPlan = r.Text("burn:plan") ?? "quick";
        var listen = r.Text("api:listen") ?? "127.0.0.1:9477";
        var apiEnabled = r.Bool("api:enabled") ?? false;
        var warnings = new List<string>();
        if (apiEnabled) warnings.AddRange(CheckListen(r, listen));
        var textfile = r.Text("prometheus:textfile") is { Length: > 0 } t ? t : Path.Combine(stateDir, "kiln.prom");
        return new ServiceOptions
        {
            StateDir = stateDir,
            SysfsRoot = Path.GetFullPath(root),
            KernelLog = kernelLog is { Length: > 0 } ? kernelLog : null,
            Check = new CheckOptions(r.Duration("check:interval", TimeSpan.FromSeconds(1), TimeSpan.FromDays(1)) ?? TimeSpan.FromMinutes(5),
                r.Text("check:profile") ?? "auto"),
            Burn = new BurnOptions(
                r.Bool("burn:enabled") ?? false,
                burnPlan,
                r.Text("burn:profile") ?? "auto",
                r.Window("burn:window") ?? new DailyWindow(TimeSpan.FromHours(2), TimeSpan.FromHours(5), false),
                r.Duration("burn:every", TimeSpan.FromSeconds(1), TimeSpan.FromDays(365)) ?? TimeSpan.FromDays(7),
                r.Text("burn:backend") ?? "all",
                r.Duration("burn:idle_poll", TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(10)) ?? TimeSpan.FromSeconds(10),
                r.Duration("burn:retest_every", TimeSpan.FromSeconds(1), TimeSpan.FromDays(365)) ?? TimeSpan.FromHours(6)),
            History = new HistoryOptions(r.Int("history:retention_days", 1, 3650) ?? 90, r.Int("history:max_mib", 1, 10240) ?? 64),
            PrometheusTextfile = textfile,
            Api = new ApiOptions(apiEnabled, listen),
            Source = path ?? "defaults",
            Warnings = warnings,
        };
    }

    // 127.0.0.1 / ::1 / localhost / a unix socket are fine; any other address is allowed only because
    // the file says so, and is warned about.
    private static IEnumerable<string> CheckListen(Reader r, string listen)
    {
        if (listen.StartsWith("unix:", StringComparison.Ordinal))
        {
            if (listen.Length == 5) throw r.Error("api:listen", "unix: needs a socket path");
            yield break;
        }
        var colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            throw r.Error("api:listen", $"'{listen}' is not ADDRESS:PORT (e.g. 127.0.0.1:9477) or unix:PATH");
        var host = listen[..colon].Trim('[', ']');
        if (host is "localhost" or "127.0.0.1" or "::1") yield break;
        if (!System.Net.IPAddress.TryParse(host, out _))
            throw r.Error("api:listen", $"'{host}' is not an IP address");
        yield return $"api.listen is {listen}: the API answers on more than loopback (states, events and a check trigger, without authentication)";
    }

    private static void Flatten(YamlConfig yaml, YamlMap map, string section, Dictionary<string, string?> values, Dictionary<string, string> lines)
    {
        map.Only(Sections[section]);
        foreach (var (key, node, keyNode) in map.Entries)
        {
            var path = section.Length == 0 ? key : $"{section}:{key}";
            if (Sections.ContainsKey(key) && section.Length == 0)
            {
                if (node is YamlScalarNode { Value: null or "" or "~" or "null" }) continue;
                if (node is not YamlMappingNode) throw yaml.Error(node, key, "expected a mapping (key: value)");
                Flatten(yaml, new YamlMap(yaml, (YamlMappingNode)node, key), key, values, lines);
                continue;
            }
            values[path] = map.Scalar(node, map.Field(key));
            lines[path] = $"{yaml.Display}:{Math.Max(1, keyNode.Start.Line)}";
        }
    }

    /// <summary>Typed reads that name where a bad value came from: FILE:LINE, or the environment variable.</summary>
    private sealed class Reader(IConfiguration config, Dictionary<string, string> lines, HashSet<string> fromEnvironment, string? file)
    {
        public UsageException Error(string key, string problem)
        {
            var where = fromEnvironment.Contains(key) ? $"environment variable {EnvironmentPrefix}{key.Replace(":", "__").ToUpperInvariant()}"
                : lines.TryGetValue(key, out var line) ? line
                : file ?? "configuration";
            return new UsageException(where, $"{key.Replace(':', '.')}: {problem}");
        }

        public string? Text(string key) => config[key] is { } v ? v.Trim() : null;

        public bool? Bool(string key) => Text(key)?.ToLowerInvariant() switch
        {
            null => null,
            "true" or "yes" or "on" or "1" => true,
            "false" or "no" or "off" or "0" => false,
            var other => throw Error(key, $"'{other}' is not true or false"),
        };

        public int? Int(string key, int min, int max)
        {
            if (Text(key) is not { } text) return null;
            if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
                throw Error(key, $"'{text}' is not a whole number");
            if (v < min || v > max) throw Error(key, $"{v} is not in {min}..{max}");
            return v;
        }

        public TimeSpan? Duration(string key, TimeSpan min, TimeSpan max)
        {
            if (Text(key) is not { } text) return null;
            TimeSpan v;
            try
            {
                v = Health.Duration.Parse(text, key);
            }
            catch (UsageException e)
            {
                throw Error(key, e.Problem);
            }
            if (v < min || v > max) throw Error(key, $"{text} is not in {Durations.Format(min)}..{Durations.Format(max)}");
            return v;
        }

        public DailyWindow? Window(string key) =>
            Text(key) is not { } text ? null
            : DailyWindow.TryParse(text) ?? throw Error(key, $"'{text}' is not a daily window HH:MM-HH:MM (local time) or always");
    }
}
