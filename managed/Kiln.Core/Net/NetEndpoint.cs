// HOST:PORT as a user writes it (a name, an IPv4 address, or [IPv6]:PORT), for kiln net probe and
// serve --bind; a mistake is a UsageException naming the argument.
using System.Globalization;
using System.Net;

namespace Kiln.Core.Net;

public sealed record NetEndpoint(string Host, int Port)
{
    /// <summary>The port kiln net serve listens on unless told otherwise.</summary>
    public const int DefaultPort = 7300;

    public static NetEndpoint Parse(string text, string option, bool portOptional = false) => Parse(text, option, portOptional, minPort: 1);

    private static NetEndpoint Parse(string text, string option, bool portOptional, int minPort)
    {
        var s = text.Trim();
        string host;
        string? port;
        if (s.StartsWith('['))
        {
            var close = s.IndexOf(']');
            if (close < 0) throw new UsageException(option, $"'{text}': an IPv6 address in [ ] has no closing ]");
            host = s[1..close];
            var rest = s[(close + 1)..];
            if (rest.Length > 0 && rest[0] != ':') throw new UsageException(option, $"'{text}': expected :PORT after ]");
            port = rest.Length > 0 ? rest[1..] : null;
        }
        else
        {
            var colon = s.LastIndexOf(':');
            if (colon >= 0 && s.IndexOf(':') != colon)
                throw new UsageException(option, $"'{text}': write an IPv6 address as [ADDRESS]:PORT");
            host = colon < 0 ? s : s[..colon];
            port = colon < 0 ? null : s[(colon + 1)..];
        }
        if (host.Length == 0) throw new UsageException(option, $"'{text}' has no host (HOST:PORT)");
        if (port is null)
        {
            if (!portOptional) throw new UsageException(option, $"'{text}' has no port (HOST:PORT, e.g. {host}:{DefaultPort})");
            return new NetEndpoint(host, DefaultPort);
        }
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) || p < minPort || p > 65535)
            throw new UsageException(option, $"'{text}': port '{port}' is not a number in {minPort}..65535");
        return new NetEndpoint(host, p);
    }

    /// <summary>An address to bind: an IP address, not a name (binding picks no interface by name); port 0 takes a free one.</summary>
    public static NetEndpoint ParseBind(string text, string option)
    {
        var e = Parse(text, option, portOptional: true, minPort: 0);
        if (!IPAddress.TryParse(e.Host, out _))
            throw new UsageException(option, $"'{e.Host}' is not an IP address to bind (e.g. 127.0.0.1, 10.0.0.2, 0.0.0.0 for every address)");
        return e;
    }

    public override string ToString() => Host.Contains(':') ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
