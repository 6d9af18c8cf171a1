// Reading kiln's YAML files (plans, profiles) strictly: every mistake is a UsageException whose text
// names the file, the line and the field ("profiles/h100.yaml:12: thresholds.stream.copy_gbps: ..."),
// unknown keys are refused with the known ones listed.
using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Kiln.Core.Profiles;

/// <summary>One parsed YAML document and the name it is reported under (a path, or "built-in plan quick").</summary>
public sealed class YamlConfig
{
    private YamlConfig(string display, string text)
    {
        Display = display;
        Text = text;
    }

    public string Display { get; }
    public string Text { get; }
    public YamlMap Root { get; private set; }

    public static YamlConfig Parse(string display, string text)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new UsageException($"{display}:{e.Start.Line}", $"not valid YAML: {FirstLine(e.InnerException?.Message ?? e.Message)}");
        }
        if (stream.Documents.Count != 1)
            throw new UsageException($"{display}:1", $"expected one YAML document, found {stream.Documents.Count}");
        var config = new YamlConfig(display, text);
        var root = stream.Documents[0].RootNode;
        if (root is not YamlMappingNode map)
            throw config.Error(root, "(top level)", "expected a mapping of keys (name:, tests: ...)");
        config.Root = new YamlMap(config, map, "");
        return config;
    }

    /// <summary>Reads a file; a missing or unreadable file is a usage error naming <paramref name="option"/>.</summary>
    public static YamlConfig Load(string path, string option)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException(option, $"cannot read {path}: {e.Message}");
        }
        return Parse(path, text);
    }

    public UsageException Error(YamlNode node, string field, string problem) =>
        new($"{Display}:{Math.Max(1, node.Start.Line)}", $"{field}: {problem}");

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();
}

/// <summary>A mapping at a dotted path ("thresholds.stream") with strict accessors.</summary>
public readonly record struct YamlMap(YamlConfig Config, YamlMappingNode Node, string Path)
{
    public string Field(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    public IEnumerable<(string Key, YamlNode Value, YamlNode KeyNode)> Entries
    {
        get
        {
            foreach (var (k, v) in Node.Children)
                yield return (((YamlScalarNode)k).Value ?? "", v, k);
        }
    }

    /// <summary>Refuses any key outside <paramref name="known"/>, naming the first stray one.</summary>
    public void Only(params string[] known)
    {
        foreach (var (key, _, keyNode) in Entries)
        {
            if (!known.Contains(key))
                throw Config.Error(keyNode, Field(key), $"unknown key (known: {string.Join(", ", known)})");
        }
    }

    public YamlNode? Get(string key) =>
        Node.Children.TryGetValue(new YamlScalarNode(key), out var v) && !IsNull(v) ? v : null;

    public YamlNode Require(string key) =>
        Get(key) ?? throw Config.Error(Node, Field(key), "is required");

    public string? String(string key) => Get(key) is { } node ? Scalar(node, Field(key)) : null;

    public double? Number(string key, double min, double max)
    {
        if (Get(key) is not { } node) return null;
        var text = Scalar(node, Field(key));
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
            throw Config.Error(node, Field(key), $"'{text}' is not a number");
        if (value < min || value > max)
            throw Config.Error(node, Field(key), $"{text} is not in {Units.Number(min)}..{Units.Number(max)}");
        return value;
    }

    public int? Int(string key, int min, int max)
    {
        if (Get(key) is not { } node) return null;
        var text = Scalar(node, Field(key));
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            throw Config.Error(node, Field(key), $"'{text}' is not a whole number");
        if (value < min || value > max)
            throw Config.Error(node, Field(key), $"{value} is not in {min}..{max}");
        return (int)value;
    }

    public bool? Bool(string key)
    {
        if (Get(key) is not { } node) return null;
        return Scalar(node, Field(key)).ToLowerInvariant() switch
        {
            "true" or "yes" or "on" => true,
            "false" or "no" or "off" => false,
            var other => throw Config.Error(node, Field(key), $"'{other}' is not true or false"),
        };
    }

    /// <summary>A duration with a unit: "90s", "20m", "24h", "2d", "500ms".</summary>
    public TimeSpan? Duration(string key, TimeSpan min, TimeSpan max)
    {
        if (Get(key) is not { } node) return null;
        var text = Scalar(node, Field(key));
        TimeSpan value;
        try
        {
            value = Health.Duration.Parse(text, Field(key));
        }
        catch (UsageException e)
        {
            throw Config.Error(node, Field(key), e.Problem);
        }
        if (value < min || value > max)
            throw Config.Error(node, Field(key), $"{text} is not in {Durations.Format(min)}..{Durations.Format(max)}");
        return value;
    }

    /// <summary>A list of scalars; a single scalar is a list of one.</summary>
    public IReadOnlyList<(string Text, YamlNode Node)> List(string key)
    {
        if (Get(key) is not { } node) return [];
        if (node is YamlScalarNode) return [(Scalar(node, Field(key)), node)];
        if (node is not YamlSequenceNode seq) throw Config.Error(node, Field(key), "expected a list");
        var field = Field(key);
        var self = this;
        return seq.Children.Select((n, i) => (self.Scalar(n, $"{field}[{i}]"), n)).ToList();
    }

    public YamlMap? Map(string key)
    {
        if (Get(key) is not { } node) return null;
        return node is YamlMappingNode m ? new YamlMap(Config, m, Field(key)) : throw Config.Error(node, Field(key), "expected a mapping (key: value)");
    }

    public IReadOnlyList<YamlMap> Maps(string key)
    {
        if (Get(key) is not { } node) return [];
        if (node is not YamlSequenceNode seq) throw Config.Error(node, Field(key), "expected a list");
        var config = Config;
        var field = Field(key);
        return seq.Children.Select((n, i) => n is YamlMappingNode m
            ? new YamlMap(config, m, $"{field}[{i}]")
            : throw config.Error(n, $"{field}[{i}]", "expected a mapping (key: value)")).ToList();
    }

    public string Scalar(YamlNode node, string field) =>
        node is YamlScalarNode s ? s.Value ?? "" : throw Config.Error(node, field, "expected a single value");

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain } s && (s.Value is null or "" or "~" or "null");
}

/// <summary>Durations as kiln prints them (90s, 20m, 24h); Health/Duration.cs reads them.</summary>
public static class Durations
{
    public static string Format(TimeSpan t) =>
        t.TotalDays >= 1 && t.TotalDays == Math.Floor(t.TotalDays) ? $"{t.TotalDays:0}d"
        : t.TotalHours >= 1 && t.TotalHours == Math.Floor(t.TotalHours) ? $"{t.TotalHours:0}h"
        : t.TotalMinutes >= 1 && t.TotalMinutes == Math.Floor(t.TotalMinutes) ? $"{t.TotalMinutes:0}m"
        : t.TotalSeconds >= 1 ? $"{t.TotalSeconds:0.###}s"
        : $"{t.TotalMilliseconds:0}ms";
}
