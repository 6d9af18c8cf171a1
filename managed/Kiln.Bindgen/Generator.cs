// The generator's entry point for the command line and for the drift test: header in, C# text out.
namespace Kiln.Bindgen;

public static class Generator
{
    /// <summary>The complete text of KilnNative.g.cs for the header at <paramref name="headerPath"/>.</summary>
    /// <exception cref="BindgenException">The header does not parse or uses what the bindings cannot express.</exception>
    /// <exception cref="DllNotFoundException">libclang is not installed.</exception>
    public static string Generate(string headerPath) => CSharpEmitter.Emit(HeaderReader.Read(headerPath));
}
