// A raw SMBIOS structure table as the kernel exposes it in /sys/firmware/dmi/tables/DMI, built from
// the DMTF SMBIOS 3.x layouts of type 4 (processor) and type 17 (memory device), so the CPU's
// memory peak can be tested on machines that do not exist here.
using System.Text;

namespace Kiln.Tests.Machine;

public sealed class SmbiosTable
{
    /// <summary>SMBIOS memory types (type 17 offset 0x12).</summary>
    public const byte Ddr4 = 0x1A, Ddr5 = 0x22;

    private readonly List<byte> _bytes = [];
    private ushort _handle = 0x100;

    /// <summary>A type 4 processor; populated sets the status' "socket populated" bit.</summary>
    public SmbiosTable Processor(string version, bool populated = true)
    {
        var f = new byte[0x30];
        f[0x10] = 1;                                  // Processor Version: string 1
        f[0x18] = (byte)(populated ? 0x41 : 0x00);    // Status: populated, CPU enabled
        return Add(4, f, version);
    }

    /// <summary>
    /// A type 17 memory device. sizeMib 0 is an empty slot; speed and configured in MT/s (0: unknown;
    /// above 0xFFFE they go to the 3.3 extended fields).
    /// </summary>
    public SmbiosTable Dimm(string locator, int sizeMib, int speedMts, int configuredMts = -1, byte type = Ddr5, int dataWidthBits = 64)
    {
        configuredMts = configuredMts < 0 ? speedMts : configuredMts;
        var f = new byte[0x5C];
        Word(f, 0x08, dataWidthBits + 8);  // total width with ECC
        Word(f, 0x0A, dataWidthBits);
        if (sizeMib >= 0x7FFF)
        {
            Word(f, 0x0C, 0x7FFF);
            DWord(f, 0x1C, sizeMib);
        }
        else
        {
            Word(f, 0x0C, sizeMib);
        }
        f[0x0E] = 0x09;  // form factor: DIMM
        f[0x10] = 1;     // Device Locator: string 1
        f[0x12] = type;
        Word(f, 0x15, speedMts > 0xFFFE ? 0xFFFF : speedMts);
        Word(f, 0x20, configuredMts > 0xFFFE ? 0xFFFF : configuredMts);
        DWord(f, 0x54, speedMts > 0xFFFE ? speedMts : 0);
        DWord(f, 0x58, configuredMts > 0xFFFE ? configuredMts : 0);
        return Add(17, f, locator);
    }

    /// <summary>The table with its type 127 end-of-table structure.</summary>
    public byte[] Bytes()
    {
        var end = new List<byte>(_bytes);
        end.AddRange([127, 4, 0xFF, 0xFE, 0, 0]);
        return end.ToArray();
    }

    /// <summary>Writes ROOT/sys/firmware/dmi/tables/DMI and returns ROOT.</summary>
    public string WriteUnder(string root)
    {
        var path = Path.Combine(root, "sys", "firmware", "dmi", "tables", "DMI");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, Bytes());
        return root;
    }

    private SmbiosTable Add(byte type, byte[] formatted, params string[] strings)
    {
        formatted[0] = type;
        formatted[1] = (byte)formatted.Length;
        Word(formatted, 2, _handle++);
        _bytes.AddRange(formatted);
        foreach (var s in strings)
        {
            _bytes.AddRange(Encoding.ASCII.GetBytes(s));
            _bytes.Add(0);
        }
        if (strings.Length == 0) _bytes.Add(0);
        _bytes.Add(0);
        return this;
    }

    private static void Word(byte[] f, int at, int value)
    {
        f[at] = (byte)value;
        f[at + 1] = (byte)(value >> 8);
    }

    private static void DWord(byte[] f, int at, int value)
    {
        Word(f, at, value);
        Word(f, at + 2, value >> 16);
    }
}
