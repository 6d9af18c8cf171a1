// What the generator learned from the header, in C terms and in header order. Holds no libclang
// state, so the emitter is a pure function of it.
namespace Kiln.Bindgen;

internal enum CPrimitiveKind { Void, Char, Bool, Signed, Unsigned, Float, NativeSigned, NativeUnsigned }

internal abstract record CType;

/// <summary>A builtin type, by kind and width (int32_t and int are the same thing here).</summary>
internal sealed record CPrimitive(CPrimitiveKind Kind, int Bytes) : CType;

internal sealed record CPointer(CType Pointee, bool PointeeIsConst) : CType;

internal sealed record CArray(CType Element, long Length) : CType;

internal sealed record CEnumRef(string Name) : CType;

internal sealed record CStructRef(string Name) : CType;

/// <summary>A struct declared but never defined: only ever seen through a pointer.</summary>
internal sealed record COpaqueRef(string Name) : CType;

internal sealed record CFunctionPointer(CType Result, IReadOnlyList<CType> Parameters) : CType;

internal abstract record CDecl(string Name, string? Doc);

internal sealed record CEnum(string Name, string? Doc, IReadOnlyList<CEnumConstant> Constants) : CDecl(Name, Doc);

internal sealed record CEnumConstant(string Name, long Value, string? Doc);

internal sealed record CStruct(string Name, string? Doc, IReadOnlyList<CField> Fields) : CDecl(Name, Doc);

internal sealed record CField(string Name, CType Type, string? Doc);

internal sealed record COpaque(string Name, string? Doc) : CDecl(Name, Doc);

/// <summary>An exported function; <see cref="Signature"/> is its C declaration for the comment.</summary>
internal sealed record CFunction(string Name, string? Doc, CType Result, IReadOnlyList<CParameter> Parameters,
    string Signature) : CDecl(Name, Doc);

internal sealed record CParameter(string Name, CType Type);

internal sealed record CHeader(string FileName, IReadOnlyList<CDecl> Declarations);

/// <summary>The header uses something the bindings cannot express, or does not parse.</summary>
public sealed class BindgenException(string message) : Exception(message);
