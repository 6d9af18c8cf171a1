// Parses the header with libclang and turns its own declarations (not those of stddef.h/stdint.h)
// into the C model, in header order. Anything the bindings cannot express stops the run with its line.
using System.Runtime.InteropServices;
using static Kiln.Bindgen.LibClang;

namespace Kiln.Bindgen;

internal sealed class HeaderReader
{
    // Parsed as plain C: the managed side binds the C ABI, whatever a C++ includer would see.
    private static readonly string[] ClangArguments = ["-x", "c", "-std=c11"];

    // Typedefs whose meaning is pointer-sized rather than a fixed width; everything else from the
    // system headers (int32_t, uint64_t ...) is bound by its canonical width.
    private static readonly Dictionary<string, CPrimitive> PointerSizedTypedefs = new()
    {
        ["size_t"] = new(CPrimitiveKind.NativeUnsigned, 8),
        ["uintptr_t"] = new(CPrimitiveKind.NativeUnsigned, 8),
        ["ssize_t"] = new(CPrimitiveKind.NativeSigned, 8),
        ["ptrdiff_t"] = new(CPrimitiveKind.NativeSigned, 8),
        ["intptr_t"] = new(CPrimitiveKind.NativeSigned, 8),
    };

    private readonly HeaderSource _source;
    private readonly List<CXCursor> _topLevel;

    private HeaderReader(HeaderSource source, List<CXCursor> topLevel)
    {
        _source = source;
        _topLevel = topLevel;
    }

    public static CHeader Read(string headerPath)
    {
        var source = new HeaderSource(File.ReadAllBytes(headerPath));
        nint index = clang_createIndex(excludeDeclarationsFromPCH: 0, displayDiagnostics: 0);
        try
        {
            nint unit = Parse(index, headerPath);
            try
            {
                ThrowOnErrors(unit);
                var topLevel = Children(clang_getTranslationUnitCursor(unit)).Where(IsFromMainFile).ToList();
                return new CHeader(Path.GetFileName(headerPath), new HeaderReader(source, topLevel).ReadDeclarations());
            }
            finally
            {
                clang_disposeTranslationUnit(unit);
            }
        }
        finally
        {
            clang_disposeIndex(index);
        }
    }

    private static unsafe nint Parse(nint index, string headerPath)
    {
        var argPointers = ClangArguments.Select(a => Marshal.StringToCoTaskMemUTF8(a)).ToArray();
        try
        {
            fixed (nint* args = argPointers)
            {
                nint unit = clang_parseTranslationUnit(index, headerPath, (byte**)args, argPointers.Length,
                    nint.Zero, 0, options: 0);
                return unit != nint.Zero
                    ? unit
                    : throw new BindgenException("libclang could not parse it (unreadable?)");
            }
        }
        finally
        {
            foreach (var p in argPointers) Marshal.FreeCoTaskMem(p);
        }
    }

    // A header with errors would still yield a partial AST (an unknown size_t silently becomes int),
    // so any error is fatal.
    private static void ThrowOnErrors(nint unit)
    {
        var errors = new List<string>();
        uint count = clang_getNumDiagnostics(unit);
        for (uint i = 0; i < count; i++)
        {
            nint diagnostic = clang_getDiagnostic(unit, i);
            try
            {
                if (clang_getDiagnosticSeverity(diagnostic) >= CXDiagnostic_Error)
                    errors.Add(Take(clang_formatDiagnostic(diagnostic, clang_defaultDiagnosticDisplayOptions())));
            }
            finally
            {
                clang_disposeDiagnostic(diagnostic);
            }
        }
        if (errors.Count == 0) return;
        // libclang1-14 alone lacks clang's own stddef.h; Debian ships it in libclang-common-14-dev.
        string hint = errors.Any(e => e.Contains("stddef.h' file not found"))
            ? "\n(clang's builtin headers are missing: install libclang-common-14-dev)"
            : "";
        throw new BindgenException("does not parse as C:\n  " + string.Join("\n  ", errors) + hint);
    }

    private List<CDecl> ReadDeclarations()
    {
        var declarations = new List<CDecl>();
        var opaqueSeen = new HashSet<string>();
        foreach (var cursor in _topLevel)
        {
            switch (clang_getCursorKind(cursor))
            {
                case CXCursorKind.EnumDecl when clang_isCursorDefinition(cursor) != 0:
                    declarations.Add(ReadEnum(cursor));
                    break;
                case CXCursorKind.StructDecl when clang_isCursorDefinition(cursor) != 0:
                    declarations.Add(ReadStruct(cursor));
                    break;
                case CXCursorKind.StructDecl when clang_Cursor_isNull(clang_getCursorDefinition(cursor)) != 0:
                    string opaqueName = TagName(cursor);
                    if (opaqueSeen.Add(opaqueName))
                        declarations.Add(new COpaque(opaqueName, Doc(cursor)));
                    break;
                case CXCursorKind.EnumDecl or CXCursorKind.StructDecl:
                    break;  // a forward declaration of something defined further down
                case CXCursorKind.TypedefDecl:
                    CheckTypedef(cursor);
                    break;
                case CXCursorKind.FunctionDecl when clang_isCursorDefinition(cursor) == 0:
                    declarations.Add(ReadFunction(cursor));
                    break;
                case CXCursorKind.FunctionDecl:
                    break;  // a static inline helper: nothing is exported to bind
                case CXCursorKind.UnionDecl:
                    throw Unsupported(cursor, "a union");
                case CXCursorKind.VarDecl:
                    throw Unsupported(cursor, "a global variable");
                default:
                    throw Unsupported(cursor, $"a top-level declaration of libclang kind {(int)clang_getCursorKind(cursor)}");
            }
        }
        return declarations;
    }

    private CEnum ReadEnum(CXCursor cursor)
    {
        var constants = Children(cursor)
            .Where(c => clang_getCursorKind(c) == CXCursorKind.EnumConstantDecl)
            .Select(c => new CEnumConstant(Spelling(c), clang_getEnumConstantDeclValue(c), Doc(c)))
            .ToList();
        return new CEnum(TagName(cursor), Doc(cursor), constants);
    }

    private CStruct ReadStruct(CXCursor cursor)
    {
        var fields = new List<CField>();
        foreach (var child in Children(cursor))
        {
            // Attributes (aligned, packed) and nested types change the layout in ways a sequential
            // C# struct would not follow, and a bit-field has no C# field of its own.
            if (clang_getCursorKind(child) != CXCursorKind.FieldDecl)
                throw Unsupported(child, "a struct member other than a plain field (a nested type or an attribute)");
            if (clang_Cursor_isBitField(child) != 0)
                throw Unsupported(child, "a bit-field");
            fields.Add(new CField(Spelling(child), Resolve(clang_getCursorType(child), child), Doc(child)));
        }
        return new CStruct(TagName(cursor), Doc(cursor), fields);
    }

    private CFunction ReadFunction(CXCursor cursor)
    {
        var functionType = clang_getCursorType(cursor);
        if (clang_isFunctionTypeVariadic(functionType) != 0)
            throw Unsupported(cursor, "a variadic function");
        var result = clang_getCursorResultType(cursor);
        var parameters = new List<CParameter>();
        var cParameters = new List<string>();
        int count = clang_Cursor_getNumArguments(cursor);
        for (uint i = 0; i < count; i++)
        {
            var argument = clang_Cursor_getArgument(cursor, i);
            var type = clang_getCursorType(argument);
            string name = Spelling(argument) is { Length: > 0 } spelled ? spelled : $"arg{i}";
            parameters.Add(new CParameter(name, Resolve(type, argument)));
            cParameters.Add($"{CSpelling(type)} {name}");
        }
        string functionName = Spelling(cursor);
        string signature = $"{CSpelling(result)} {functionName}({(count == 0 ? "void" : string.Join(", ", cParameters))});";
        return new CFunction(functionName, Doc(cursor), Resolve(result, cursor), parameters, signature);
    }

    // The bindings give a struct or enum one name; "typedef struct a b;" would need two.
    private void CheckTypedef(CXCursor cursor)
    {
        var underlying = Unelaborate(clang_getTypedefDeclUnderlyingType(cursor));
        if (underlying.kind is not (CXTypeKind.Record or CXTypeKind.Enum)) return;
        string tag = TagName(clang_getTypeDeclaration(underlying));
        if (tag != Spelling(cursor))
            throw Unsupported(cursor, $"typedef {Spelling(cursor)} of a type tagged {tag}; give tag and typedef one name");
    }

    /// <summary>The tag of a struct or enum; for "typedef struct { ... } name;" the typedef's name.</summary>
    private string TagName(CXCursor declaration)
    {
        string spelling = Spelling(declaration);
        bool anonymous = spelling.Length == 0 || spelling.Contains("(unnamed") || spelling.Contains("(anonymous");
        if (!anonymous) return spelling;
        foreach (var c in _topLevel)
        {
            if (clang_getCursorKind(c) != CXCursorKind.TypedefDecl) continue;
            var underlying = Unelaborate(clang_getTypedefDeclUnderlyingType(c));
            if (clang_equalCursors(clang_getTypeDeclaration(underlying), declaration) != 0) return Spelling(c);
        }
        throw Unsupported(declaration, "an anonymous struct or enum without a typedef");
    }

    private CType Resolve(CXType type, CXCursor at)
    {
        switch (type.kind)
        {
            case CXTypeKind.Elaborated:
                return Resolve(clang_Type_getNamedType(type), at);
            case CXTypeKind.Typedef:
                return ResolveTypedef(type, at);
            case CXTypeKind.Record:
                var record = clang_getTypeDeclaration(type);
                if (clang_getCursorKind(record) != CXCursorKind.StructDecl)
                    throw Unsupported(at, $"the union {Spelling(type)}");
                return clang_Cursor_isNull(clang_getCursorDefinition(record)) != 0
                    ? new COpaqueRef(TagName(record))
                    : new CStructRef(TagName(record));
            case CXTypeKind.Enum:
                return new CEnumRef(TagName(clang_getTypeDeclaration(type)));
            case CXTypeKind.Pointer:
                var pointee = clang_getPointeeType(type);
                if (clang_getCanonicalType(pointee).kind is CXTypeKind.FunctionProto or CXTypeKind.FunctionNoProto)
                    return ResolveFunctionPointer(Unelaborate(pointee), at);
                return new CPointer(Resolve(pointee, at), clang_isConstQualifiedType(pointee) != 0);
            case CXTypeKind.ConstantArray:
                return new CArray(Resolve(clang_getArrayElementType(type), at), clang_getArraySize(type));
            default:
                return ResolveBuiltin(type, at);
        }
    }

    private CType ResolveTypedef(CXType type, CXCursor at)
    {
        string name = Take(clang_getTypedefName(type));
        if (PointerSizedTypedefs.TryGetValue(name, out var pointerSized)) return pointerSized;
        var declaration = clang_getTypeDeclaration(type);
        if (!IsFromMainFile(declaration)) return Resolve(clang_getCanonicalType(type), at);
        // The header's own typedefs are transparent: their target carries the name that is bound.
        return Resolve(clang_getTypedefDeclUnderlyingType(declaration), at);
    }

    private CFunctionPointer ResolveFunctionPointer(CXType function, CXCursor at)
    {
        while (function.kind == CXTypeKind.Typedef)
            function = Unelaborate(clang_getTypedefDeclUnderlyingType(clang_getTypeDeclaration(function)));
        if (function.kind != CXTypeKind.FunctionProto)
            throw Unsupported(at, $"the function type {Spelling(function)} without a prototype");
        if (clang_isFunctionTypeVariadic(function) != 0)
            throw Unsupported(at, $"the variadic function type {Spelling(function)}");
        var parameters = new List<CType>();
        int count = clang_getNumArgTypes(function);
        for (uint i = 0; i < count; i++) parameters.Add(Resolve(clang_getArgType(function, i), at));
        return new CFunctionPointer(Resolve(clang_getResultType(function), at), parameters);
    }

    private static CType ResolveBuiltin(CXType type, CXCursor at)
    {
        int bytes = (int)clang_Type_getSizeOf(type);
        return type.kind switch
        {
            CXTypeKind.Void => new CPrimitive(CPrimitiveKind.Void, 0),
            CXTypeKind.Bool => new CPrimitive(CPrimitiveKind.Bool, bytes),
            CXTypeKind.Char_S or CXTypeKind.Char_U => new CPrimitive(CPrimitiveKind.Char, bytes),
            CXTypeKind.SChar or CXTypeKind.Short or CXTypeKind.Int or CXTypeKind.Long or CXTypeKind.LongLong
                => new CPrimitive(CPrimitiveKind.Signed, bytes),
            CXTypeKind.UChar or CXTypeKind.UShort or CXTypeKind.UInt or CXTypeKind.ULong or CXTypeKind.ULongLong
                => new CPrimitive(CPrimitiveKind.Unsigned, bytes),
            CXTypeKind.Float or CXTypeKind.Double => new CPrimitive(CPrimitiveKind.Float, bytes),
            _ => throw Unsupported(at, $"the type {Spelling(type)}"),
        };
    }

    private static CXType Unelaborate(CXType type) =>
        type.kind == CXTypeKind.Elaborated ? clang_Type_getNamedType(type) : type;

    /// <summary>A type as C code spells it, with the header's "T*" pointer style.</summary>
    private static string CSpelling(CXType type) => Spelling(type).Replace(" *", "*").Replace("*const", "* const");

    private string? Doc(CXCursor cursor)
    {
        var (start, end) = ExtentOffsets(cursor);
        return _source.LeadingComment(start) ?? _source.TrailingComment(end);
    }

    private static BindgenException Unsupported(CXCursor at, string what)
    {
        uint line, column;
        unsafe { clang_getExpansionLocation(clang_getCursorLocation(at), null, &line, &column, null); }
        return new BindgenException($"line {line}:{column} ({Spelling(at)}): the bindings cannot express {what}");
    }
}
