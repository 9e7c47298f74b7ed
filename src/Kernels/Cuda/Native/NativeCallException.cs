// The common shape of every failed native call: which library, the status name and code, the library's
// own message and the C# text of the call that failed (captured by each library's Check helper).
namespace SimClr.Kernels.Cuda.Native;

/// <summary>A native CUDA-family call returned an error status.</summary>
public abstract class NativeCallException(string library, string statusName, int statusCode, string nativeMessage, string call, string? hint = null)
    : Exception(Format(library, statusName, statusCode, nativeMessage, call, hint))
{
    public string Library { get; } = library;
    public string StatusName { get; } = statusName;
    public int StatusCode { get; } = statusCode;
    public string NativeMessage { get; } = nativeMessage;
    public string Call { get; } = call;

    private static string Format(string library, string statusName, int statusCode, string nativeMessage, string call, string? hint)
    {
        var text = $"{library} call `{call}` failed with {statusName} ({statusCode}): {nativeMessage}";
        return hint is null ? text : $"{text}. {hint}";
    }
}
