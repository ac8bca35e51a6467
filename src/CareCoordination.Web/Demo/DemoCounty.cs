namespace CareCoordination.Demo;

/// <summary>
/// Westmoor, the invented county the demo store describes. Every name, place and organisation is
/// fictional; postcodes use the WM area, which no real UK postcode uses, and phone numbers come
/// from Ofcom's range kept for drama.
/// </summary>
internal static class DemoCounty
{
    public const string Name = "Westmoor";

    public const string PartnerClientId = "demo-acute-trust";
    public const string PartnerName = "Westmoor General Hospital EPR";
    public const string PartnerScopes =
        "system/Patient.crus system/ServiceRequest.cruds system/Task.rs system/Location.rs system/HealthcareService.rs system/MeasureReport.rs system/Organization.rs "
        + "system/Practitioner.rs system/PractitionerRole.rs system/AuditEvent.rs system/Subscription.cruds";

    // The acute trust behind the demo referrer and the partner EPR.
    public const string MainAcuteTrust = "RWM";
    public const string OtherAcuteTrust = "RSM";
    public const string CommunityTrust = "RWC";
    public const string CommunityHospital = "KMH";
    public const string BedBureau = "WBB";
    public const string Council = "WMC";

    public sealed record Locality(string Name, IReadOnlyList<string> Districts, int Weight, string CoordinationCentre, string GpPractice, string AcuteTrust);

    public sealed record OrganisationSpec(string Code, string Name, string Kind, string? Locality,
        string? CqcRating = null, string Caution = "none", string? CautionNote = null);

    /// <summary>Share weights who of several people at one organisation does most of the work.</summary>
    public sealed record UserSpec(string Username, string DisplayName, string Role, string Organisation, int Share = 1);

    public sealed record WardSpec(string Name, string BedType, int Beds, int FemaleBay = 0, int MaleBay = 0);

    public sealed record SiteSpec(string Name, string Owner, string Kind, string Locality, string Postcode, IReadOnlyList<WardSpec> Wards);

    /// <summary>Covers: the localities a community service reaches (in memory only; the table has one base locality).</summary>
    public sealed record ServiceSpec(string Owner, string Name, string Kind, string? Locality, string Unit, int Capacity, IReadOnlyList<string> Covers);

    /// <summary>Names by NHS ethnic category, weighted roughly like an older rural English population.</summary>
    public sealed record NameGroup(IReadOnlyList<string> Ethnicities, double Weight, IReadOnlyList<string> Female, IReadOnlyList<string> Male,
        IReadOnlyList<string> Family, string? Language = null, double InterpreterShare = 0);

    public static IReadOnlyList<Locality> Localities { get; } =
    [
        new("Ashbury", ["WM1", "WM2", "WM3"], 25, "CCC-NORTH", "W99001", MainAcuteTrust),
        new("Kelworth", ["WM4", "WM5"], 15, "CCC-NORTH", "W99002", MainAcuteTrust),
        new("Thornbridge", ["WM6", "WM7"], 20, "CCC-CENTRAL", "W99003", MainAcuteTrust),
        new("Saltmouth", ["WM8", "WM9"], 18, "CCC-SOUTH", "W99004", OtherAcuteTrust),
        new("Holmedale", ["WM10"], 12, "CCC-CENTRAL", "W99005", OtherAcuteTrust),
        new("Brackenfield", ["WM11", "WM12"], 10, "CCC-SOUTH", "W99005", OtherAcuteTrust),
    ];

    public static IReadOnlyList<OrganisationSpec> Organisations { get; } =
    [
        new("CCC-NORTH", "Westmoor North Community Coordination Centre", "coordination-centre", "Ashbury"),
        new("CCC-CENTRAL", "Westmoor Central Community Coordination Centre", "coordination-centre", "Thornbridge"),
        new("CCC-SOUTH", "Westmoor South Community Coordination Centre", "coordination-centre", "Saltmouth"),
        new(BedBureau, "Westmoor Bed Bureau", "bed-bureau", "Thornbridge"),
        new(MainAcuteTrust, "Westmoor General Hospital NHS Trust", "acute-trust", "Ashbury"),
        new(OtherAcuteTrust, "Saltmouth and Coast Hospitals NHS Foundation Trust", "acute-trust", "Saltmouth"),
        new(CommunityTrust, "Westmoor Community Health NHS Trust", "community-trust", "Thornbridge"),
        new(CommunityHospital, "Kelworth Memorial Hospital", "community-hospital", "Kelworth"),
        new("W99001", "Ashbury Health Centre", "gp-practice", "Ashbury"),
        new("W99002", "Kelworth Medical Practice", "gp-practice", "Kelworth"),
        new("W99003", "Thornbridge Surgery", "gp-practice", "Thornbridge"),
        new("W99004", "Saltmouth Harbour Surgery", "gp-practice", "Saltmouth"),
        new("W99005", "Holmedale and Brackenfield Group Practice", "gp-practice", "Holmedale"),
        new(Council, "Westmoor County Council", "council", "Thornbridge"),
        new("PRV-HOMEFIRST", "Westmoor Home First Reablement", "provider", "Thornbridge", "good"),
        new("PRV-CAREWELL", "Carewell Home Care Ltd", "provider", "Ashbury", "good"),
        new("PRV-AGEWELL", "Age Well Westmoor", "provider", "Ashbury", "not-rated"),
        new("PRV-ORCHARD", "Orchard Lodge Care Group", "provider", "Kelworth", "outstanding"),
        new("PRV-HEARTH", "Hearthside Care Homes Ltd", "provider", "Thornbridge", "good"),
        new("PRV-MEADOW", "Meadowbank Healthcare Ltd", "provider", "Holmedale", "requires-improvement", "amber",
            "CQC rated requires improvement (medicines management). Council quality team visiting monthly; nursing placements need manager sign-off."),
        new("PRV-SEAVIEW", "Seaview Residential Homes Ltd", "provider", "Saltmouth", "inadequate", "red",
            "Embargo on new admissions to Seaview House while a safeguarding enquiry is open. Do not place."),
    ];

    public static IReadOnlyList<UserSpec> Users { get; } =
    [
        // The five accounts the demo sign-in page offers.
        new("referrer", "Priya Shah", "referrer", MainAcuteTrust, 3),
        new("coordinator", "Tom Okafor", "coordinator", "CCC-NORTH", 3),
        new("bedbureau", "Helen Marsh", "bed-bureau", BedBureau, 3),
        new("manager", "David Trelawney", "manager", Council),
        new("admin", "Sam Whitfield", "admin", Council),
        // Colleagues who made the history.
        new("aisha.begum", "Aisha Begum", "referrer", MainAcuteTrust, 2),
        new("gareth.evans", "Gareth Evans", "referrer", OtherAcuteTrust, 2),
        new("ngozi.eze", "Ngozi Eze", "referrer", OtherAcuteTrust),
        new("lucy.penrose", "Lucy Penrose", "referrer", CommunityTrust, 2),
        new("ruth.tregear", "Ruth Tregear", "referrer", CommunityTrust),
        new("mark.hughes", "Mark Hughes", "referrer", CommunityHospital),
        new("folake.adeyemi", "Dr Folake Adeyemi", "referrer", "W99001"),
        new("wei.chen", "Dr Wei Chen", "referrer", "W99002"),
        new("nina.kowalski", "Nina Kowalski", "referrer", "W99003"),
        new("iain.macleod", "Dr Iain MacLeod", "referrer", "W99004"),
        new("kwame.osei", "Dr Kwame Osei", "referrer", "W99005"),
        new("jo.nankivell", "Jo Nankivell", "coordinator", "CCC-NORTH", 2),
        new("kemal.arslan", "Kemal Arslan", "coordinator", "CCC-CENTRAL"),
        new("ben.rowe", "Ben Rowe", "coordinator", "CCC-CENTRAL"),
        new("fiona.grant", "Fiona Grant", "coordinator", "CCC-SOUTH"),
        new("ade.bankole", "Ade Bankole", "coordinator", "CCC-SOUTH"),
        new("maria.santos", "Maria Santos", "bed-bureau", BedBureau, 2),
    ];

    public static IReadOnlyList<SiteSpec> Sites { get; } =
    [
        new("Ashbury Community Hospital", CommunityTrust, "community-hospital", "Ashbury", "WM2 6HT",
            [new("Foxglove Ward", "rehabilitation", 20, 6, 6), new("Heather Ward", "rehabilitation", 16, 4, 4)]),
        new("Thornbridge Community Hospital", CommunityTrust, "community-hospital", "Thornbridge", "WM6 3PL",
            [new("Kingfisher Ward", "rehabilitation", 18, 6, 6), new("Willow Ward", "step-down-nursing", 14)]),
        new("Saltmouth Community Hospital", CommunityTrust, "community-hospital", "Saltmouth", "WM8 2QB",
            [new("Harbour Ward", "rehabilitation", 18, 8, 8), new("Lighthouse Ward", "rehabilitation", 12)]),
        new("Holmedale Community Hospital", CommunityTrust, "community-hospital", "Holmedale", "WM10 4DS",
            [new("Oak Ward", "rehabilitation", 16, 8, 8)]),
        new("Kelworth Memorial Hospital", CommunityHospital, "community-hospital", "Kelworth", "WM4 7JN",
            [new("Bramble Ward", "rehabilitation", 16, 6, 6), new("Primrose Ward", "step-down-nursing", 8)]),
        new("Brackenfield Step-Down Unit", "PRV-ORCHARD", "step-down-unit", "Brackenfield", "WM11 5RW",
            [new("Lavender Unit", "step-down-nursing", 14)]),
        new("Riverside Step-Down Unit", "PRV-MEADOW", "step-down-unit", "Ashbury", "WM3 8EF",
            [new("Riverside Ground Floor", "step-down-nursing", 12), new("Riverside First Floor", "rehabilitation", 10)]),
        new("Orchard Lodge", "PRV-ORCHARD", "care-home", "Kelworth", "WM5 1AG",
            [new("Apple Wing", "residential", 14), new("Pear Wing", "dementia", 12)]),
        new("Hearthside House", "PRV-HEARTH", "care-home", "Thornbridge", "WM7 2LD",
            [new("Ground Floor", "nursing", 16), new("First Floor", "residential", 10)]),
        new("Hearthside Court", "PRV-HEARTH", "care-home", "Saltmouth", "WM9 6NX",
            [new("Seaward Suite", "nursing", 14), new("Harbour Suite", "dementia", 10)]),
        new("Seaview House", "PRV-SEAVIEW", "care-home", "Saltmouth", "WM9 3TB",
            [new("Main House", "residential", 14)]),
        new("Meadowbank Nursing Home", "PRV-MEADOW", "care-home", "Holmedale", "WM10 7GU",
            [new("Buttercup Unit", "nursing", 14), new("Clover Unit", "dementia", 12)]),
        new("The Beeches", "PRV-ORCHARD", "care-home", "Brackenfield", "WM12 4HW",
            [new("Beech Wing", "residential", 14), new("Rowan Suite", "dementia", 8)]),
        new("Moorview Care Home", "PRV-HEARTH", "care-home", "Ashbury", "WM1 9SZ",
            [new("Moor Wing", "residential", 12), new("Tor Wing", "nursing", 12), new("Heath Wing", "dementia", 8)]),
    ];

    private static readonly string[] North = ["Ashbury", "Kelworth"];
    private static readonly string[] Central = ["Thornbridge", "Holmedale"];
    private static readonly string[] South = ["Saltmouth", "Brackenfield"];
    private static readonly string[] NorthAndCentral = ["Ashbury", "Kelworth", "Thornbridge"];
    private static readonly string[] SouthAndHolmedale = ["Saltmouth", "Brackenfield", "Holmedale"];
    private static readonly string[] Everywhere = ["Ashbury", "Kelworth", "Thornbridge", "Saltmouth", "Holmedale", "Brackenfield"];

    public static IReadOnlyList<ServiceSpec> Services { get; } =
    [
        new("PRV-HOMEFIRST", "Home First Reablement - North", "reablement", "Ashbury", "slots", 14, North),
        new("PRV-HOMEFIRST", "Home First Reablement - Central", "reablement", "Thornbridge", "slots", 12, Central),
        new("PRV-HOMEFIRST", "Home First Reablement - South", "reablement", "Saltmouth", "slots", 10, South),
        new("PRV-CAREWELL", "Carewell Home Care - North", "home-care", "Ashbury", "hours", 140, NorthAndCentral),
        new("PRV-CAREWELL", "Carewell Home Care - South", "home-care", "Saltmouth", "hours", 110, SouthAndHolmedale),
        new(CommunityTrust, "Community Therapy Team - North", "therapy", "Ashbury", "slots", 10, NorthAndCentral),
        new(CommunityTrust, "Community Therapy Team - South", "therapy", "Saltmouth", "slots", 8, SouthAndHolmedale),
        new("PRV-AGEWELL", "Age Well Westmoor - home from hospital", "voluntary-sector", null, "slots", 8, Everywhere),
        new("PRV-AGEWELL", "Age Well Westmoor - befriending and shopping", "voluntary-sector", null, "slots", 12, Everywhere),
        new(CommunityTrust, "Westmoor community hospital beds", "community-hospital", null, "slots", 6, Everywhere),
        new(CommunityHospital, "Kelworth Memorial admissions", "community-hospital", "Kelworth", "slots", 2, North),
        new("PRV-ORCHARD", "Orchard Lodge short-term beds", "care-home", "Kelworth", "slots", 3, Everywhere),
        new("PRV-HEARTH", "Hearthside discharge-to-assess beds", "care-home", "Thornbridge", "slots", 4, Everywhere),
        new("PRV-MEADOW", "Meadowbank nursing beds", "care-home", "Holmedale", "slots", 2, Everywhere),
    ];

    /// <summary>Where in an acute hospital a discharge referral comes from.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> HospitalWards { get; } = new Dictionary<string, IReadOnlyList<string>>
    {
        [MainAcuteTrust] = ["Acute Medical Unit", "Ward 4 (Respiratory)", "Ward 7 (Care of the Elderly)", "Ward 9 (Care of the Elderly)", "Ward 12 (Orthopaedics)", "Stroke Unit"],
        [OtherAcuteTrust] = ["Gull Ward (Medicine)", "Puffin Ward (Frailty)", "Cormorant Ward (Trauma and Orthopaedics)", "Tern Ward (Stroke)"],
        [CommunityTrust] = ["Foxglove Ward", "Heather Ward", "Kingfisher Ward", "Willow Ward", "Harbour Ward", "Lighthouse Ward", "Oak Ward"],
        [CommunityHospital] = ["Bramble Ward", "Primrose Ward"],
    };

    /// <summary>A referring trust's hospital site (HospitalSites), with the wards of HospitalWards that are on it.</summary>
    public sealed record HospitalSiteSpec(string Owner, string Code, string Name, IReadOnlyList<string> Wards);

    /// <summary>Every ward of HospitalWards is on exactly one of its trust's sites; Kelworth Memorial has one site only.</summary>
    public static IReadOnlyList<HospitalSiteSpec> HospitalSites { get; } =
    [
        new(MainAcuteTrust, "RWM01", "Westmoor General Hospital", ["Acute Medical Unit", "Ward 4 (Respiratory)", "Ward 7 (Care of the Elderly)", "Ward 12 (Orthopaedics)", "Stroke Unit"]),
        new(MainAcuteTrust, "RWM02", "Holmedale Hospital", ["Ward 9 (Care of the Elderly)"]),
        new(OtherAcuteTrust, "RSM01", "Saltmouth General Hospital", ["Gull Ward (Medicine)", "Puffin Ward (Frailty)", "Tern Ward (Stroke)"]),
        new(OtherAcuteTrust, "RSM02", "Coast Road Hospital", ["Cormorant Ward (Trauma and Orthopaedics)"]),
        new(CommunityTrust, "RWC01", "Ashbury Community Hospital", ["Foxglove Ward", "Heather Ward"]),
        new(CommunityTrust, "RWC02", "Thornbridge Community Hospital", ["Kingfisher Ward", "Willow Ward"]),
        new(CommunityTrust, "RWC03", "Saltmouth Community Hospital", ["Harbour Ward", "Lighthouse Ward"]),
        new(CommunityTrust, "RWC04", "Holmedale Community Hospital", ["Oak Ward"]),
        new(CommunityHospital, "KMH01", "Kelworth Memorial Hospital", ["Bramble Ward", "Primrose Ward"]),
    ];

    // Letters a postcode's inward code may use (never C, I, K, M, O or V).
    public const string InwardLetters = "ABDEFGHJLNPQRSTUWXYZ";

    public static IReadOnlyList<string> Streets { get; } =
    [
        "Chapel Street", "Fore Street", "Church Road", "Station Road", "Mill Lane", "Trelawney Close", "Harbour View",
        "Moor Lane", "Victoria Road", "Orchard Way", "Meadow Close", "The Crescent", "Penhallow Road", "Quay Street",
        "Castle Hill", "Bracken Rise", "Gorse Way", "School Lane", "Park View", "Windmill Hill", "Kingsley Avenue",
        "Bay View Terrace", "Tinners Way", "Priory Gardens", "Elm Grove", "Foundry Row", "Rosewarne Drive", "Market Place",
    ];

    public static IReadOnlyList<string> Courts { get; } =
    [
        "Harbour Court", "Abbey Mews", "Kestrel House", "St Piran's Court", "Millbrook Lodge", "Granary Court", "Sandpiper House",
    ];

    public static IReadOnlyList<NameGroup> NameGroups { get; } =
    [
        new(["A"], 76,
            ["Margaret", "Patricia", "Barbara", "Jean", "Joan", "Dorothy", "Sheila", "Brenda", "Maureen", "Valerie", "Pauline",
             "Christine", "Irene", "Eileen", "Sylvia", "Doreen", "Janet", "Shirley", "Gillian", "Ann", "Elizabeth", "Mary",
             "Kathleen", "Joyce", "Audrey", "Beryl", "Marjorie", "Rosemary", "Carol", "Susan", "Wendy", "Hazel", "Pamela", "Ruth", "Edna"],
            ["John", "David", "Michael", "Peter", "Robert", "Brian", "Alan", "Anthony", "Kenneth", "Roy", "Derek", "Keith",
             "Terence", "Raymond", "Colin", "Geoffrey", "Dennis", "Ronald", "Malcolm", "Graham", "Trevor", "Barry", "Roger",
             "Maurice", "Leonard", "Frank", "Stanley", "Harold", "Gordon", "Norman", "William", "George", "Richard"],
            ["Smith", "Jones", "Williams", "Brown", "Taylor", "Davies", "Evans", "Thomas", "Johnson", "Roberts", "Walker",
             "Wright", "Robinson", "Thompson", "White", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris", "Lewis",
             "Martin", "Jackson", "Clarke", "Turner", "Hill", "Scott", "Cooper", "Morris", "Ward", "Moore", "King", "Watson",
             "Baker", "Harrison", "Morgan", "Penrose", "Tregenza", "Pascoe", "Nancarrow", "Hocking", "Trewin", "Polglase",
             "Kitto", "Chapman", "Pearce", "Stevens", "Bennett", "Holmes", "Marshall", "Ellis", "Webb", "Parsons", "Knight",
             "Fletcher", "Dawson", "Burton", "Rogers", "Cole", "Lane", "Mitchell", "Palmer", "Barnes", "Hunt", "Jenkin", "Rowse"]),
        new(["Z"], 3.5,
            ["Margaret", "Patricia", "Jean", "Dorothy", "Brenda", "Valerie", "Janet", "Mary", "Joyce", "Sandra"],
            ["John", "David", "Peter", "Brian", "Alan", "Kenneth", "Derek", "Colin", "Ronald", "Terry"],
            ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Hall", "Bray", "Curnow", "Symons", "Oliver", "Hawke"]),
        new(["B"], 2,
            ["Bridget", "Mary", "Kathleen", "Eileen", "Nora", "Maureen", "Siobhan", "Teresa"],
            ["Patrick", "Sean", "Michael", "Declan", "Brendan", "Kevin", "Liam", "Seamus"],
            ["Murphy", "O'Brien", "Kelly", "Byrne", "Ryan", "O'Sullivan", "Walsh", "Doyle", "McCarthy", "Gallagher", "Fitzgerald"]),
        new(["C"], 3,
            ["Krystyna", "Halina", "Danuta", "Zofia", "Teresa", "Janina", "Elżbieta"],
            ["Stanisław", "Józef", "Andrzej", "Tadeusz", "Zbigniew", "Jan", "Henryk"],
            ["Nowak", "Mazur", "Krawczyk", "Wójcik", "Kaczmarek", "Zając", "Pawlak"], "Polish", 0.4),
        new(["C"], 1.5,
            ["Maria", "Fernanda", "Conceição", "Rosa", "Lurdes"],
            ["José", "Manuel", "António", "Joaquim", "Carlos"],
            ["Silva", "Santos", "Ferreira", "Pereira", "Costa", "Rodrigues"], "Portuguese", 0.3),
        new(["H"], 1,
            ["Kokila", "Hansa", "Manjula", "Pushpa", "Savita"],
            ["Ramesh", "Mahendra", "Dinesh", "Jayantilal", "Pravin"],
            ["Patel", "Shah", "Mistry", "Parmar", "Lad"], "Gujarati", 0.35),
        new(["H"], 1,
            ["Gurmit", "Jaswinder", "Surinder", "Harbans", "Parminder"],
            ["Gurdev", "Balwant", "Harjit", "Kuldip", "Ajit"],
            ["Sandhu", "Gill", "Dhillon", "Bains", "Sidhu"], "Punjabi", 0.35),
        new(["J"], 1,
            ["Nasreen", "Shabana", "Zubeda", "Parveen", "Razia"],
            ["Mohammed", "Abdul", "Ghulam", "Rashid", "Tariq"],
            ["Hussain", "Khan", "Ahmed", "Iqbal", "Akhtar", "Mahmood"], "Urdu", 0.35),
        new(["K"], 0.8,
            ["Rahima", "Jahanara", "Momtaz", "Rokeya", "Shahida"],
            ["Abdul", "Nurul", "Abul", "Mohammed", "Shamsul"],
            ["Miah", "Uddin", "Rahman", "Ali", "Islam", "Choudhury"], "Sylheti", 0.5),
        new(["L"], 0.8,
            ["Maricel", "Lourdes", "Nirmala", "Rosario", "Kumari"],
            ["Eduardo", "Rohan", "Suresh", "Ramon", "Nimal"],
            ["Reyes", "Fernando", "Perera", "Mendoza", "Cruz", "Silva"], "Tagalog", 0.2),
        new(["M"], 1.8,
            ["Gloria", "Hyacinth", "Myrtle", "Merle", "Claudette", "Pearline", "Icilda"],
            ["Winston", "Clinton", "Lloyd", "Errol", "Delroy", "Everton", "Neville"],
            ["Campbell", "Francis", "Clarke", "Forbes", "Bailey", "Grant", "McKenzie", "Reid"]),
        new(["N"], 1,
            ["Funmilayo", "Adaeze", "Abena", "Comfort", "Grace", "Yetunde"],
            ["Olusegun", "Kwabena", "Emeka", "Kofi", "Samuel", "Babatunde"],
            ["Okonkwo", "Mensah", "Asante", "Oduya", "Boateng", "Adebayo"], "Yoruba", 0.1),
        new(["N"], 0.6,
            ["Faduma", "Halima", "Amina", "Hodan", "Sahra"],
            ["Abdi", "Hassan", "Mohamed", "Yusuf", "Ahmed"],
            ["Warsame", "Farah", "Osman", "Jama", "Nur"], "Somali", 0.5),
        new(["R"], 1,
            ["Mei Ling", "Lai Ying", "Wai Fong", "Siu Mui", "Yuk Lan"],
            ["Kwok Wing", "Chi Keung", "Wing Hong", "Man Kit", "Ping"],
            ["Chan", "Wong", "Lee", "Cheung", "Lau", "Ng"], "Cantonese", 0.5),
        new(["S"], 1,
            ["Fatma", "Ayşe", "Leila", "Zeynep", "Mariam"],
            ["Mehmet", "Hasan", "Yusuf", "Mustafa", "Karim"],
            ["Yılmaz", "Demir", "Haddad", "Aziz", "Kaya"], "Turkish", 0.4),
        new(["D", "E", "F", "G"], 1,
            ["Angela", "Donna", "Lorraine", "Michelle", "Sharon"],
            ["Paul", "Wayne", "Andrew", "Marcus", "Lee"],
            ["Williams", "Thomas", "Campbell", "Roberts", "Khan", "Brown", "James"]),
    ];

    /// <summary>Carers of a generation younger than the people referred, for the majority groups.</summary>
    public static IReadOnlyList<string> ChildrenFemale { get; } = ["Sarah", "Karen", "Julie", "Helen", "Lisa", "Michelle", "Claire", "Tracey", "Nicola", "Joanne"];

    public static IReadOnlyList<string> ChildrenMale { get; } = ["Mark", "Paul", "Andrew", "Stephen", "Darren", "Neil", "Simon", "Gary", "Martin", "Ian"];

    public static IReadOnlyList<string> Needs { get; } =
    [
        "nutrition", "personal-hygiene", "toileting", "dressing", "home-safety", "habitable-home", "relationships",
        "community-access", "caring-responsibilities", "mobility", "transfers", "medication", "night-support",
    ];

    public static IReadOnlyList<string> Strengths { get; } =
    [
        "Motivated to get home and regain independence.",
        "Supportive daughter lives nearby and visits daily.",
        "Good neighbours who help with shopping.",
        "Managed own medication before admission.",
        "Walks with a frame indoors; keen to manage the stairs again.",
        "Strong links with the local chapel community.",
        "Manages own finances and appointments.",
        "Clear about own wishes and able to direct care.",
        "Spouse is the main carer and wants to carry on with support.",
        "Enjoys cooking and wants to make own meals again.",
        "Ground-floor flat with level access.",
        "Has a key safe and a pendant alarm already.",
    ];

    public static IReadOnlyList<string> Goals { get; } =
    [
        "To return home and manage personal care independently.",
        "To walk to the corner shop with a stick.",
        "To get in and out of bed safely without help.",
        "To go home to the dog and the garden.",
        "To manage the stairs and sleep upstairs again.",
        "To stay at home rather than move into a care home.",
        "To regain confidence after the fall.",
        "To find a long-term care home near family.",
        "To manage meals and medication with as little support as possible.",
        "To get back to the lunch club on Thursdays.",
    ];

    public static IReadOnlyList<string> AcuteReasons { get; } =
    [
        "admitted after a fall at home with a fractured neck of femur, now five days post-op",
        "admitted with a urinary tract infection and delirium, now resolving",
        "admitted with community-acquired pneumonia, now off oxygen",
        "admitted with a stroke causing left-sided weakness",
        "admitted with an exacerbation of COPD",
        "admitted with cellulitis of the left leg, completing IV antibiotics",
        "admitted with decompensated heart failure, now stable on oral diuretics",
        "admitted after a long lie following a fall; no fracture",
        "admitted with a chest infection and reduced mobility",
    ];

    public static IReadOnlyList<string> CommunityHospitalReasons { get; } =
    [
        "in a community hospital bed for rehabilitation after a hip fracture",
        "completing rehabilitation after a stroke",
        "reconditioning after a long acute stay",
        "in a community hospital bed after a fall, mobility improving slowly",
    ];

    public static IReadOnlyList<string> CommunityReasons { get; } =
    [
        "having increasing falls at home over the last fortnight",
        "unable to manage personal care after a wrist fracture",
        "struggling alone at home since their partner was admitted to hospital",
        "losing mobility after a chest infection and at risk of admission",
        "newly confused at home; urine infection being treated by the GP",
        "the subject of self-neglect concerns raised by neighbours; eating poorly",
    ];

    public static IReadOnlyList<string> Mobility { get; } =
    [
        "Mobilising with a frame and one to assist.",
        "Transfers with two carers and a stand aid.",
        "Independently mobile with a stick.",
        "Hoist for all transfers.",
        "Walking short distances with supervision.",
    ];

    public static IReadOnlyList<string> PersonWishes { get; } =
    [
        "Wants to go home.",
        "Wants to go home as soon as possible and does not want a care home.",
        "Happy to go to a care home near family.",
        "Would like a short stay to build up strength before going home.",
        "Not able to give a clear preference; seems settled on the ward.",
    ];

    public static IReadOnlyList<string> FamilyExpectations { get; } =
    [
        "Family agree with going home with support.",
        "Daughter worried about falls and would prefer a care home.",
        "Son supports going home but cannot provide care himself.",
        "Wife wants to keep caring at home with help.",
        "Family not yet contacted.",
    ];

    public static IReadOnlyList<string> InfectionStatuses { get; } =
    [
        "MRSA positive (decolonisation in progress)",
        "C. difficile: 48 hours symptom-free",
        "COVID-19 positive on admission",
        "Norovirus contact; bay closed",
    ];

    public static IReadOnlyList<string> LawfulReasons { get; } =
    [
        "Person lacks capacity to consent; shared in their best interests (Mental Capacity Act 2005).",
        "Safeguarding: shared without consent to prevent harm (Care Act 2014 s.42).",
        "Vital interests: urgent care needed and the person cannot consent at present.",
    ];

    public static IReadOnlyList<string> BestInterests { get; } =
    [
        "Best interests meeting held with daughter and ward team: discharge to a residential home for assessment.",
        "Capacity assessment pending; best interests decision to be made at Thursday's MDT.",
        "Lacks capacity for this decision; LPA for health and welfare agrees with home with support.",
    ];

    public static IReadOnlyList<(string Request, string Response)> InformationExchanges { get; } =
    [
        ("Please confirm current mobility: transfers with one or two, and any equipment in use.",
         "Transfers with one and a frame; has a perching stool and raised toilet seat at home."),
        ("Is the person medically optimised yet? Please confirm the expected discharge date.",
         "Medically optimised today; expected discharge tomorrow morning."),
        ("Please send the latest OT and physio assessment.",
         "OT and physio notes attached to the EPR; both recommend reablement with one carer."),
        ("Family report they want a care home. Has the person agreed to reablement?",
         "Discussed on the ward today: wants to try home first and agrees to reablement."),
        ("Please confirm infection status and the date of the last swab.",
         "MRSA screen negative on the 3rd; no other infection concerns."),
        ("Who will meet the team at home, and is there a key safe?",
         "Key safe fitted last week; son will meet the team on the first visit."),
    ];

    public static IReadOnlyList<string> DeclineReasons { get; } =
    [
        "Needs can be met by the existing package of care; the provider is restarting it.",
        "No eligible needs under the Care Act after review; signposted to Age Well Westmoor.",
        "Person declined reablement after discussion with the coordination centre.",
        "Outside scope: referred on to the community mental health team.",
    ];

    public static IReadOnlyList<string> CancelReasons { get; } =
    [
        "No longer medically optimised: new infection, discharge on hold.",
        "Referral sent in error: duplicate of an earlier referral.",
        "Family have arranged private care.",
        "Person readmitted to the acute hospital.",
    ];

    public const string NoResponseReason = "No response to the information request within 72 hours.";

    public static IReadOnlyList<string> CoordinatorNotes { get; } =
    [
        "Spoke to daughter: she will be at the house for the first visit.",
        "Equipment (commode, perching stool) ordered from the community equipment store.",
        "Pharmacy asked for a blister pack before discharge.",
        "Checked with the GP: no further tests planned before discharge.",
    ];
}
