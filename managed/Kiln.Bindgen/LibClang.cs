// The small slice of libclang's C API (clang-c/Index.h, LLVM 14) the generator needs, and the
// resolver that finds libclang. Struct layouts are copied from Index.h: they travel by value.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kiln.Bindgen;

[StructLayout(LayoutKind.Sequential)]
internal struct CXCursor
{
    public CXCursorKind kind;
    public int xdata;
    public nint data0, data1, data2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXType
{
    public CXTypeKind kind;
    public nint data0, data1;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXString
{
    public nint data;
    public uint private_flags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXSourceLocation
{
    public nint ptr_data0, ptr_data1;
    public uint int_data;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXSourceRange
{
    public nint ptr_data0, ptr_data1;
    public uint begin_int_data, end_int_data;
}

internal enum CXCursorKind : int
{
    StructDecl = 2,
    UnionDecl = 3,
    EnumDecl = 5,
    FieldDecl = 6,
    EnumConstantDecl = 7,
    FunctionDecl = 8,
    VarDecl = 9,
    TypedefDecl = 20,
}

internal enum CXTypeKind : int
{
    Invalid = 0,
    Void = 2,
    Bool = 3,
    Char_U = 4,
    UChar = 5,
    UShort = 8,
    UInt = 9,
    ULong = 10,
    ULongLong = 11,
    Char_S = 13,
    SChar = 14,
    Short = 16,
    Int = 17,
    Long = 18,
    LongLong = 19,
    Float = 21,
    Double = 22,
    Pointer = 101,
    Record = 105,
    Enum = 106,
    Typedef = 107,
    FunctionNoProto = 110,
    FunctionProto = 111,
    ConstantArray = 112,
    Elaborated = 119,
}

internal static unsafe partial class LibClang
{
    private const string Library = "libclang";

    /// <summary>Where libclang is looked for, in order (Debian's libclang1-14 first by soname).</summary>
    internal static readonly string[] Candidates =
    [
        "libclang.so.1",
        "libclang-14.so.1",
        "/usr/lib/llvm-14/lib/libclang.so.1",
        "/usr/lib/x86_64-linux-gnu/libclang-14.so.1",
    ];

    public const int CXChildVisit_Continue = 1;
    public const int CXDiagnostic_Error = 3;

    [ModuleInitializer]
    internal static void RegisterResolver() =>
        NativeLibrary.SetDllImportResolver(typeof(LibClang).Assembly,
            (name, _, _) => name == Library ? Load() : nint.Zero);

    private static nint Load()
    {
        var tried = new List<string>();
        foreach (var candidate in Candidates)
        {
            try
            {
                return NativeLibrary.Load(candidate);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                // The last line of .NET's message is dlerror(); the lines above are generic advice.
                tried.Add("  " + e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1]);
            }
        }
        throw new DllNotFoundException(
            "libclang could not be loaded (install libclang1-14); tried:\n" + string.Join("\n", tried));
    }

    [LibraryImport(Library)] public static partial nint clang_createIndex(int excludeDeclarationsFromPCH, int displayDiagnostics);
    [LibraryImport(Library)] public static partial void clang_disposeIndex(nint index);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint clang_parseTranslationUnit(nint index, string sourceFilename, byte** commandLineArgs,
        int numCommandLineArgs, nint unsavedFiles, uint numUnsavedFiles, uint options);
    [LibraryImport(Library)] public static partial void clang_disposeTranslationUnit(nint unit);

    [LibraryImport(Library)] public static partial uint clang_getNumDiagnostics(nint unit);
    [LibraryImport(Library)] public static partial nint clang_getDiagnostic(nint unit, uint index);
    [LibraryImport(Library)] public static partial int clang_getDiagnosticSeverity(nint diagnostic);
    [LibraryImport(Library)] public static partial CXString clang_formatDiagnostic(nint diagnostic, uint options);
    [LibraryImport(Library)] public static partial uint clang_defaultDiagnosticDisplayOptions();
    [LibraryImport(Library)] public static partial void clang_disposeDiagnostic(nint diagnostic);

    [LibraryImport(Library)] public static partial CXCursor clang_getTranslationUnitCursor(nint unit);
    [LibraryImport(Library)]
    public static partial uint clang_visitChildren(CXCursor parent,
        delegate* unmanaged<CXCursor, CXCursor, nint, int> visitor, nint clientData);
    [LibraryImport(Library)] public static partial CXCursorKind clang_getCursorKind(CXCursor cursor);
    [LibraryImport(Library)] public static partial CXString clang_getCursorSpelling(CXCursor cursor);
    [LibraryImport(Library)] public static partial CXType clang_getCursorType(CXCursor cursor);
    [LibraryImport(Library)] public static partial CXCursor clang_getCursorDefinition(CXCursor cursor);
    [LibraryImport(Library)] public static partial int clang_Cursor_isNull(CXCursor cursor);
    [LibraryImport(Library)] public static partial uint clang_isCursorDefinition(CXCursor cursor);
    [LibraryImport(Library)] public static partial uint clang_Cursor_isBitField(CXCursor cursor);
    [LibraryImport(Library)] public static partial uint clang_equalCursors(CXCursor a, CXCursor b);
    [LibraryImport(Library)] public static partial long clang_getEnumConstantDeclValue(CXCursor cursor);
    [LibraryImport(Library)] public static partial CXType clang_getTypedefDeclUnderlyingType(CXCursor cursor);
    [LibraryImport(Library)] public static partial CXType clang_getCursorResultType(CXCursor cursor);
    [LibraryImport(Library)] public static partial int clang_Cursor_getNumArguments(CXCursor cursor);
    [LibraryImport(Library)] public static partial CXCursor clang_Cursor_getArgument(CXCursor cursor, uint index);

    [LibraryImport(Library)] public static partial CXString clang_getTypeSpelling(CXType type);
    [LibraryImport(Library)] public static partial CXString clang_getTypedefName(CXType type);
    [LibraryImport(Library)] public static partial CXType clang_getCanonicalType(CXType type);
    [LibraryImport(Library)] public static partial CXType clang_Type_getNamedType(CXType type);
    [LibraryImport(Library)] public static partial CXCursor clang_getTypeDeclaration(CXType type);
    [LibraryImport(Library)] public static partial CXType clang_getPointeeType(CXType type);
    [LibraryImport(Library)] public static partial CXType clang_getArrayElementType(CXType type);
    [LibraryImport(Library)] public static partial long clang_getArraySize(CXType type);
    [LibraryImport(Library)] public static partial long clang_Type_getSizeOf(CXType type);
    [LibraryImport(Library)] public static partial uint clang_isConstQualifiedType(CXType type);
    [LibraryImport(Library)] public static partial CXType clang_getResultType(CXType functionType);
    [LibraryImport(Library)] public static partial int clang_getNumArgTypes(CXType functionType);
    [LibraryImport(Library)] public static partial CXType clang_getArgType(CXType functionType, uint index);
    [LibraryImport(Library)] public static partial uint clang_isFunctionTypeVariadic(CXType functionType);

    [LibraryImport(Library)] public static partial CXSourceLocation clang_getCursorLocation(CXCursor cursor);
    [LibraryImport(Library)] public static partial int clang_Location_isFromMainFile(CXSourceLocation location);
    [LibraryImport(Library)] public static partial CXSourceRange clang_getCursorExtent(CXCursor cursor);
    [LibraryImport(Library)] public static partial CXSourceLocation clang_getRangeStart(CXSourceRange range);
    [LibraryImport(Library)] public static partial CXSourceLocation clang_getRangeEnd(CXSourceRange range);
    [LibraryImport(Library)]
    public static partial void clang_getExpansionLocation(CXSourceLocation location, nint* file, uint* line,
        uint* column, uint* offset);

    [LibraryImport(Library)] public static partial byte* clang_getCString(CXString text);
    [LibraryImport(Library)] public static partial void clang_disposeString(CXString text);

    // ---- conveniences over the raw imports -------------------------------------------------

    /// <summary>Decodes and disposes a CXString, so no caller can forget the dispose.</summary>
    public static string Take(CXString text)
    {
        try
        {
            return Marshal.PtrToStringUTF8((nint)clang_getCString(text)) ?? "";
        }
        finally
        {
            clang_disposeString(text);
        }
    }

    public static string Spelling(CXCursor cursor) => Take(clang_getCursorSpelling(cursor));

    public static string Spelling(CXType type) => Take(clang_getTypeSpelling(type));

    public static bool IsFromMainFile(CXCursor cursor) =>
        clang_Location_isFromMainFile(clang_getCursorLocation(cursor)) != 0;

    /// <summary>Byte offsets of a cursor's extent in the file where its tokens were written.</summary>
    public static (int Start, int End) ExtentOffsets(CXCursor cursor)
    {
        var range = clang_getCursorExtent(cursor);
        return (FileOffset(clang_getRangeStart(range)), FileOffset(clang_getRangeEnd(range)));
    }

    private static int FileOffset(CXSourceLocation location)
    {
        uint offset;
        clang_getExpansionLocation(location, null, null, null, &offset);
        return (int)offset;
    }

    /// <summary>The direct children of a cursor, in source order.</summary>
    public static List<CXCursor> Children(CXCursor parent)
    {
        var children = new List<CXCursor>();
        var handle = GCHandle.Alloc(children);
        try
        {
            clang_visitChildren(parent, &CollectChild, GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
        return children;
    }

    [UnmanagedCallersOnly]
    private static int CollectChild(CXCursor cursor, CXCursor parent, nint clientData)
    {
        ((List<CXCursor>)GCHandle.FromIntPtr(clientData).Target!).Add(cursor);
        return CXChildVisit_Continue;
    }
}
