namespace CareCoordination.Bench;

/// <summary>Where the repository is (the folder holding CareCoordination.sln), and what the bench reads from it.</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>The bench's own build configuration: the product is run from the build of the same one.</summary>
    public const string Configuration =
#if DEBUG
        "Debug";
#else
        "Release";
#endif

    /// <summary>The product's built dll (the project reference builds it with the bench, in the same configuration).</summary>
    public static string ProductDll => Path.Combine(Root, "src", "CareCoordination.Web", "bin", Configuration, "net10.0", "CareCoordination.Web.dll");

    public static string Example(string name) => File.ReadAllText(Path.Combine(Root, "fhir-profiles", "examples", name));

    private static string FindRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "CareCoordination.sln")))
                {
                    return directory.FullName;
                }
            }
        }
        throw new InvalidOperationException("run the bench inside the repository: CareCoordination.sln not found above " + AppContext.BaseDirectory);
    }
}
