// `kiln worker --backend B --device N --parent PID`: internal, started by `kiln burn` for each device.
// It dies with its parent (PR_SET_PDEATHSIG, and a check that the parent is still the one named),
// keeps the stdout it was given for the protocol and points its own fd 1 at stderr, so a native
// library that prints cannot corrupt the stream; then serves the parent's requests (WorkerServer).
using System.CommandLine;
using System.Runtime.InteropServices;
using Kiln.Core;
using Kiln.Core.Runs;
using Microsoft.Win32.SafeHandles;

namespace Kiln.Cli.Commands;

public static class WorkerCommand
{
    public static Command Create(CliServices services)
    {
        var backend = new Option<string>(OptionNames.Backend) { Required = true, Description = "The device's backend" };
        var device = new Option<int>(OptionNames.Device) { Required = true, Description = "The device's index in its backend" };
        var parent = new Option<int>("--parent") { Description = "The burn's process id: the worker ends when it is gone" };
        var command = new Command("worker", "Internal: runs one device's tests for kiln burn, results on stdout") { backend, device, parent };
        command.Hidden = true;
        command.SetAction((parse, cancel) =>
        {
            DieWithParent(parse.GetValue(parent));
            using var protocol = TakeStdout();
            var (name, index) = (parse.GetValue(backend)!, parse.GetValue(device));
            return Task.FromResult(WorkerServer.Serve(() => services.Native.Registry.OpenDevice(name, index), Console.In, protocol, cancel));
        });
        return command;
    }

    private const int PrSetPdeathsig = 1, Sigkill = 9;

    [DllImport("libc", SetLastError = true)]
    private static extern int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [DllImport("libc")]
    private static extern int getppid();

    [DllImport("libc", SetLastError = true)]
    private static extern int dup(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int dup2(int from, int to);

    private static void DieWithParent(int parent)
    {
        if (!OperatingSystem.IsLinux()) return;
        _ = prctl(PrSetPdeathsig, Sigkill, 0, 0, 0);
        // The parent may have died before the line above: then this process was re-parented.
        if (parent > 0 && getppid() != parent) Environment.Exit(ExitCodes.Internal);
    }

    private static Stream TakeStdout()
    {
        Console.Out.Flush();
        var fd = dup(1);
        if (fd < 0 || dup2(2, 1) < 0) return Console.OpenStandardOutput();
        return new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, bufferSize: 0);
    }
}
