// How config.json spells a choice: exactly as the command line does (resnet18, imagenet, fashion-mnist, sqrt),
// so every value in a run's config.json is one its flag accepts and the file can be passed back with --config.
// The spelling is the member's name in lower case, or its [JsonStringEnumMemberName] where the CLI adds a
// hyphen. Reading ignores case, hyphens and underscores, so configs written by format-version-1 builds that
// used kebab case ("res-net18", "image-net") still load.
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SimClr.Training.Config;

public sealed class CliEnumConverter : JsonConverterFactory
{
    public override bool CanConvert(Type typeToConvert) => typeToConvert.IsEnum;

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(Converter<>).MakeGenericType(typeToConvert))!;

    /// <summary>The command-line spelling of <paramref name="value"/>.</summary>
    public static string Name<TEnum>(TEnum value) where TEnum : struct, Enum => Converter<TEnum>.Names[value];

    /// <summary>The command-line spelling of an enum value of any type.</summary>
    public static string Name(Enum value) => Spelling(value.GetType().GetField(value.ToString(), BindingFlags.Public | BindingFlags.Static)!);

    private static string Spelling(FieldInfo member) => member.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? member.Name.ToLowerInvariant();

    /// <summary>Every command-line spelling of <typeparamref name="TEnum"/>, in declaration order.</summary>
    public static IEnumerable<string> Names<TEnum>() where TEnum : struct, Enum => Converter<TEnum>.Names.Values;

    private static string Key(string s) => s.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

    private sealed class Converter<TEnum> : JsonConverter<TEnum> where TEnum : struct, Enum
    {
        public static readonly Dictionary<TEnum, string> Names = typeof(TEnum).GetFields(BindingFlags.Public | BindingFlags.Static)
            .ToDictionary(f => (TEnum)f.GetValue(null)!, Spelling);

        private static readonly Dictionary<string, TEnum> ByKey = Names.ToDictionary(p => Key(p.Value), p => p.Key);

        public override TEnum Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            string text = reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw new JsonException($"expected one of {string.Join(", ", Names.Values)}, got a {reader.TokenType}");
            return ByKey.TryGetValue(Key(text), out var v) ? v : throw new JsonException($"'{text}' is not one of {string.Join(", ", Names.Values)}");
        }

        public override void Write(Utf8JsonWriter writer, TEnum value, JsonSerializerOptions options) => writer.WriteStringValue(Names[value]);
    }
}
