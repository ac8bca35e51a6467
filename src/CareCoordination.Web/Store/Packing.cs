using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Compression;
using ZstdSharp;

namespace CareCoordination.Store;

/// <summary>
/// Packing for what the store keeps only to give back later exactly as it was (a partner's message, a superseded FHIR
/// version): unpacked, it is the same bytes. A referral's messages are a few KB of FHIR JSON that say much the same as
/// every other referral's, so new values are packed with Zstandard and a dictionary of FHIR JSON in this system's
/// profiles (Store/Dictionaries): what they share with it costs a few bytes, and a 5 KB Bundle packs to a few hundred
/// bytes where Brotli alone gave 1.4 to 2 KB. Values packed before (Brotli, since 0016) are read as they were.
/// <para>
/// A dictionary can never change once anything is packed with it: a new one is a new file with the next number, and
/// the number travels in every value packed with it. The packed value is two standard Zstandard frames: a skippable
/// frame holding the dictionary's number, then the data's frame (so <c>zstd -d -D fhir-1.dict</c> unpacks it too).
/// </para>
/// </summary>
public static class Packing
{
    /// <summary>The encoding of a packed column, as HTTP names it; rows kept before packing say <see cref="Identity"/>.</summary>
    public const string Zstd = "zstd";
    public const string Brotli = "br";
    public const string Identity = "identity";

    /// <summary>The dictionary new values are packed with.</summary>
    private const int CurrentDictionary = 1;

    // Level 9 with the dictionary: some tens of µs for a 5 KB message (it is packed inside the writing transaction), and
    // within a few per cent of level 19's size.
    private const int Level = 9;

    // Zstandard's skippable frame (magic 0x184D2A50, little-endian) with a four-byte payload: the dictionary's number.
    private const uint SkippableMagic = 0x184D2A50;
    private const int HeaderLength = 12;

    private static readonly Dictionary<int, byte[]> Dictionaries = LoadDictionaries();

    // Contexts are not thread-safe and costly to make (the dictionary is loaded into each): one per concurrent packer.
    private static readonly ConcurrentBag<Compressor> Compressors = [];
    private static readonly ConcurrentDictionary<int, ConcurrentBag<Decompressor>> Decompressors = new();

    public static byte[] Pack(ReadOnlySpan<byte> data)
    {
        if (!Compressors.TryTake(out var compressor))
        {
            compressor = new Compressor(Level);
            compressor.LoadDictionary(Dictionaries[CurrentDictionary]);
        }
        try
        {
            var packed = new byte[HeaderLength + Compressor.GetCompressBound(data.Length)];
            BinaryPrimitives.WriteUInt32LittleEndian(packed, SkippableMagic);
            BinaryPrimitives.WriteUInt32LittleEndian(packed.AsSpan(4), 4);
            BinaryPrimitives.WriteInt32LittleEndian(packed.AsSpan(8), CurrentDictionary);
            var written = compressor.Wrap(data, packed.AsSpan(HeaderLength));
            return packed[..(HeaderLength + written)];
        }
        finally
        {
            Compressors.Add(compressor);
        }
    }

    /// <summary>A value in a column that says how it was packed (the partner's message: body_encoding).</summary>
    public static byte[] Unpack(byte[] stored, string encoding) => encoding switch
    {
        Identity => stored,
        Brotli => UnpackBrotli(stored),
        Zstd => UnpackZstd(stored),
        _ => throw new InvalidOperationException($"A stored value is encoded as '{encoding}', which this version cannot read."),
    };

    /// <summary>
    /// A packed value whose column does not say how (a FHIR version): Brotli before issue 14's dictionaries, Zstandard
    /// since. Told apart by the first byte: this store's Brotli always opened with a 22-bit window, whose header's low
    /// four bits are 1011; the skippable frame opens with 0x50.
    /// </summary>
    public static byte[] Unpack(byte[] packed) => IsZstd(packed) ? UnpackZstd(packed) : UnpackBrotli(packed);

    private static bool IsZstd(ReadOnlySpan<byte> packed) =>
        packed.Length >= HeaderLength && BinaryPrimitives.ReadUInt32LittleEndian(packed) == SkippableMagic;

    private static byte[] UnpackZstd(byte[] packed)
    {
        if (!IsZstd(packed) || BinaryPrimitives.ReadUInt32LittleEndian(packed.AsSpan(4)) != 4)
        {
            throw new InvalidOperationException("A stored value said to be packed with Zstandard does not name its dictionary.");
        }
        var number = BinaryPrimitives.ReadInt32LittleEndian(packed.AsSpan(8));
        if (!Dictionaries.TryGetValue(number, out var dictionary))
        {
            throw new InvalidOperationException($"A stored value is packed with dictionary {number}, which this version does not have.");
        }
        var pool = Decompressors.GetOrAdd(number, _ => []);
        if (!pool.TryTake(out var decompressor))
        {
            decompressor = new Decompressor();
            decompressor.LoadDictionary(dictionary);
        }
        try
        {
            return decompressor.Unwrap(packed.AsSpan(HeaderLength)).ToArray();
        }
        finally
        {
            pool.Add(decompressor);
        }
    }

    private static byte[] UnpackBrotli(byte[] stored)
    {
        using var packed = new BrotliStream(new MemoryStream(stored), CompressionMode.Decompress);
        using var unpacked = new MemoryStream(stored.Length * 4);
        packed.CopyTo(unpacked);
        return unpacked.ToArray();
    }

    private static Dictionary<int, byte[]> LoadDictionaries()
    {
        var assembly = typeof(Packing).Assembly;
        var dictionaries = new Dictionary<int, byte[]>();
        for (var number = 1; assembly.GetManifestResourceStream($"packing/fhir-{number}.dict") is { } stream; number++)
        {
            using (stream)
            {
                using var bytes = new MemoryStream();
                stream.CopyTo(bytes);
                dictionaries[number] = bytes.ToArray();
            }
        }
        return dictionaries.ContainsKey(CurrentDictionary)
            ? dictionaries
            : throw new InvalidOperationException($"The packing dictionary fhir-{CurrentDictionary}.dict is not built into this version.");
    }
}
