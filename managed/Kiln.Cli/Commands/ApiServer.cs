// The service's optional local API (api.enabled): GET /metrics (kiln.prom's text), GET /v1/states
// (what `kiln status --format json` prints), GET /v1/events?limit=N, GET /v1/runs?limit=N and
// POST /v1/check (a check now; answers with its run). Bound to api.listen: 127.0.0.1:PORT by default,
// or unix:PATH (a socket under the state folder); any other address only because the file says so,
// and the service warns about it at start.
using System.Net;
using Kiln.Core;
using Kiln.Core.Service;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kiln.Cli.Commands;

public sealed class ApiServer(NodeService node, ServiceOptions options, ILoggerFactory logs) : IHostedService, IAsyncDisposable
{
    private const int MaxLimit = 1000;
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        var api = options.Api;
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (api.UnixSocket is { } socket)
            {
                // A socket left by a killed service would make the bind fail.
                if (File.Exists(socket)) File.Delete(socket);
                k.ListenUnixSocket(socket);
                return;
            }
            var colon = api.Listen.LastIndexOf(':');
            var host = api.Listen[..colon].Trim('[', ']');
            var port = int.Parse(api.Listen[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            if (host == "localhost") k.ListenLocalhost(port);
            else k.Listen(IPAddress.Parse(host), port);
        });
        var app = builder.Build();
        var host = HostName.Current;
        app.MapGet("/metrics", () => Results.Text(node.MetricsText(), "text/plain; version=0.0.4"));
        app.MapGet("/v1/states", () => Results.Text(node.Read(h => StatusView.From(h, host)).ToJson(), "application/json"));
        app.MapGet("/v1/events", (int? limit) => Results.Json(node.Read(h => h.Events(Limit(limit))), Kiln.Core.Results.SummaryJson.Options));
        app.MapGet("/v1/runs", (int? limit) => Results.Json(node.Read(h => h.Runs(Limit(limit))), Kiln.Core.Results.SummaryJson.Options));
        app.MapPost("/v1/check", async (CancellationToken cancel) =>
        {
            var run = await node.RequestCheck().WaitAsync(TimeSpan.FromMinutes(5), cancel);
            return Results.Json(run, Kiln.Core.Results.SummaryJson.Options);
        });
        await app.StartAsync(cancellationToken);
        _app = app;
        logs.CreateLogger("kiln.api").LogInformation("API listening on {Listen}", api.Listen);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null) await _app.StopAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
    }

    private static int Limit(int? limit) => Math.Clamp(limit ?? 50, 1, MaxLimit);
}
