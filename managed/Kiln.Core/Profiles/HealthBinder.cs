// A profile's `health:` section onto Kiln.Core.Health.HealthPolicy: each key is the snake_case name of
// a policy property (expected_gpu_count, xids, ib_error_counters ...), found by reflection so a new
// policy setting is readable from YAML the day it is added. Tables (xids, ib_error_counters,
// min_hugepages) are merged onto the defaults; values with a unit in their name carry that unit.
using System.Globalization;
using System.Reflection;
using System.Text;
using Kiln.Core.Health;
using Kiln.Native;
using YamlDotNet.RepresentationModel;

namespace Kiln.Core.Profiles;

public static class HealthBinder
{
    /// <summary>Every settable policy property by its YAML key.</summary>
    public static IReadOnlyDictionary<string, PropertyInfo> Keys { get; } = typeof(HealthPolicy)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite)
        .ToDictionary(p => SnakeCase(p.Name), p => p);

    public static HealthPolicy Bind(YamlMap health)
    {
        health.Only([.. Keys.Keys]);
        var policy = HealthPolicy.Default with { };
        foreach (var (key, node, _) in health.Entries)
        {
            var property = Keys[key];
            property.SetValue(policy, Read(health, key, node, property, property.GetValue(HealthPolicy.Default)));
        }
        if (policy.Validate() is { Count: > 0 } problems)
        {
            // Validate names the field first ("expected_gpu_count: 99 is not in 0..64"): point at its line.
            var first = problems[0];
            var field = first.Split(':', 2)[0];
            var node = health.Get(field) ?? health.Node;
            throw health.Config.Error(node, health.Field(field), first.Contains(": ") ? first.Split(": ", 2)[1] : first);
        }
        return policy;
    }

    /// <summary>True when <see cref="Read"/> knows the property's type (a test walks every policy property).</summary>
    public static bool CanRead(Type type) =>
        Nullable.GetUnderlyingType(type) is { } inner ? CanRead(inner)
        : type == typeof(int) || type == typeof(long) || type == typeof(ulong) || type == typeof(double) || type == typeof(bool)
          || type == typeof(string) || type == typeof(TimeSpan) || type.IsEnum
          || type == typeof(IReadOnlyList<string>) || type == typeof(CounterLimit)
          || type == typeof(IReadOnlyDictionary<string, CounterLimit>) || type == typeof(IReadOnlyDictionary<int, XidAction>)
          || type == typeof(IReadOnlyDictionary<long, long>);

    private static object? Read(YamlMap parent, string key, YamlNode node, PropertyInfo property, object? defaults)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        var field = parent.Field(key);
        var config = parent.Config;
        string Text() => parent.Scalar(node, field);

        if (type == typeof(string)) return Text();
        if (type == typeof(bool)) return parent.Bool(key);
        if (type == typeof(int)) return parent.Int(key, int.MinValue, int.MaxValue);
        if (type == typeof(long)) return WholeNumber(config, node, field, Text());
        if (type == typeof(TimeSpan)) return parent.Duration(key, TimeSpan.Zero, TimeSpan.FromDays(3650));
        if (type == typeof(ulong))
        {
            // Sizes (min_memory_bytes: 2TiB) are written with their unit like any size on kiln's command line.
            try { return ByteSize.Parse(Text(), field); }
            catch (UsageException e) { throw config.Error(node, field, e.Problem); }
        }
        if (type == typeof(double))
        {
            if (UnitOfName(property.Name) is { } kind)
            {
                var q = Units.Parse(Text(), kind, out var problem);
                return q?.Value ?? throw config.Error(node, field, problem);
            }
            return parent.Number(key, double.MinValue, double.MaxValue);
        }
        if (type == typeof(ThrottleReasons)) return Throttle(parent, key);
        if (type.IsEnum) return EnumValue(config, node, field, type, Text());
        if (type == typeof(IReadOnlyList<string>)) return parent.List(key).Select(x => x.Text).ToList();
        if (type == typeof(CounterLimit)) return Limit(Map(parent, key));
        if (type == typeof(IReadOnlyDictionary<string, CounterLimit>))
        {
            var table = new Dictionary<string, CounterLimit>((IReadOnlyDictionary<string, CounterLimit>)defaults!);
            var map = Map(parent, key);
            foreach (var (name, _, _) in map.Entries) table[name] = Limit(Map(map, name));
            return table;
        }
        if (type == typeof(IReadOnlyDictionary<int, XidAction>))
        {
            var table = new Dictionary<int, XidAction>((IReadOnlyDictionary<int, XidAction>)defaults!);
            var map = Map(parent, key);
            foreach (var (xid, value, keyNode) in map.Entries)
            {
                var number = (int)WholeNumber(config, keyNode, map.Field(xid), xid);
                table[number] = (XidAction)EnumValue(config, value, map.Field(xid), typeof(XidAction), map.Scalar(value, map.Field(xid)));
            }
            return table;
        }
        if (type == typeof(IReadOnlyDictionary<long, long>))
        {
            var table = new Dictionary<long, long>((IReadOnlyDictionary<long, long>)defaults!);
            var map = Map(parent, key);
            foreach (var (size, value, keyNode) in map.Entries)
                table[WholeNumber(config, keyNode, map.Field(size), size)] = WholeNumber(config, value, map.Field(size), map.Scalar(value, map.Field(size)));
            return table;
        }
        throw config.Error(node, field, $"kiln cannot read a {type.Name} setting from YAML yet");
    }

    /// <summary>The unit a policy property's name promises: ...Gbps is a link rate (Gb/s), ...C a temperature.</summary>
    private static QuantityKind? UnitOfName(string property) =>
        property.EndsWith("Gbps", StringComparison.Ordinal) ? QuantityKind.LinkRate
        : property.EndsWith("C", StringComparison.Ordinal) && property.Length > 1 && char.IsLower(property[^2]) ? QuantityKind.Temperature
        : null;

    private static YamlMap Map(YamlMap parent, string key) => parent.Map(key) ?? throw parent.Config.Error(parent.Node, parent.Field(key), "expected a mapping");

    private static CounterLimit Limit(YamlMap m)
    {
        m.Only("warn_above", "fail_above");
        long? Read(string k) => m.Get(k) is { } n ? WholeNumber(m.Config, n, m.Field(k), m.Scalar(n, m.Field(k))) : null;
        return new CounterLimit(Read("warn_above"), Read("fail_above"));
    }

    private static ThrottleReasons Throttle(YamlMap parent, string key)
    {
        var reasons = ThrottleReasons.None;
        foreach (var (name, node) in parent.List(key))
        {
            if (name == "none") continue;
            reasons |= (ThrottleReasons)EnumValue(parent.Config, node, parent.Field(key), typeof(ThrottleReasons), name);
        }
        return reasons;
    }

    private static long WholeNumber(YamlConfig config, YamlNode node, string field, string text) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
            ? n : throw config.Error(node, field, $"'{text}' is not a whole number");

    private static object EnumValue(YamlConfig config, YamlNode node, string field, Type type, string text)
    {
        foreach (var name in Enum.GetNames(type))
        {
            if (SnakeCase(name) == text.Trim().ToLowerInvariant()) return Enum.Parse(type, name);
        }
        throw config.Error(node, field, $"unknown value '{text}' (known: {string.Join(", ", Enum.GetNames(type).Select(SnakeCase))})");
    }

    /// <summary>ExpectedIbRateGbps -> expected_ib_rate_gbps; HwSlowdown -> hw_slowdown.</summary>
    public static string SnakeCase(string name)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c) && i > 0 && (char.IsLower(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1]))))
                sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}
