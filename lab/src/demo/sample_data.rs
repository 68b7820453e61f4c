//! The real-trace sample bundled into the binary for `dcpilot demo` (provenance and
//! citation: `tests/data/README.md`).

/// Bitbrains GWA-T-12 "Rnd" VM files: (file name, content).
pub const BITBRAINS: &[(&str, &str)] = &[
    (
        "1.csv",
        include_str!("../../../tests/data/bitbrains_rnd/2013-8/1.csv"),
    ),
    (
        "17.csv",
        include_str!("../../../tests/data/bitbrains_rnd/2013-8/17.csv"),
    ),
    (
        "25.csv",
        include_str!("../../../tests/data/bitbrains_rnd/2013-8/25.csv"),
    ),
    (
        "33.csv",
        include_str!("../../../tests/data/bitbrains_rnd/2013-8/33.csv"),
    ),
    (
        "41.csv",
        include_str!("../../../tests/data/bitbrains_rnd/2013-8/41.csv"),
    ),
    (
        "49.csv",
        include_str!("../../../tests/data/bitbrains_rnd/2013-8/49.csv"),
    ),
    (
        "57.csv",
        include_str!("../../../tests/data/bitbrains_rnd/2013-8/57.csv"),
    ),
    (
        "9.csv",
        include_str!("../../../tests/data/bitbrains_rnd/2013-8/9.csv"),
    ),
];

/// NTUA nginx interference runs: (run name, nginx_metrics.csv content).
pub const NTUA: &[(&str, &str)] = &[
    ("Memento_V01", include_str!("../../../tests/data/ntua_interference/Raw_Data/Memento_V01/nginx_metrics.csv")),
    ("Memento_V01_mix_scenarios", include_str!("../../../tests/data/ntua_interference/Raw_Data/Memento_V01_mix_scenarios/nginx_metrics.csv")),
    ("Memento_V02", include_str!("../../../tests/data/ntua_interference/Raw_Data/Memento_V02/nginx_metrics.csv")),
    ("Memento_V02_3_MixedScenarios", include_str!("../../../tests/data/ntua_interference/Raw_Data/Memento_V02_3_MixedScenarios/nginx_metrics.csv")),
    ("Memento_V02_3_MixedScenarios_Remains", include_str!("../../../tests/data/ntua_interference/Raw_Data/Memento_V02_3_MixedScenarios_Remains/nginx_metrics.csv")),
    ("Memento_V03", include_str!("../../../tests/data/ntua_interference/Raw_Data/Memento_V03/nginx_metrics.csv")),
    ("Memento_V04", include_str!("../../../tests/data/ntua_interference/Raw_Data/Memento_V04/nginx_metrics.csv")),
    ("TheGame_MIX_V01", include_str!("../../../tests/data/ntua_interference/Raw_Data/TheGame_MIX_V01/nginx_metrics.csv")),
    ("TheGame_MIX_V02", include_str!("../../../tests/data/ntua_interference/Raw_Data/TheGame_MIX_V02/nginx_metrics.csv")),
    ("TheGame_V01", include_str!("../../../tests/data/ntua_interference/Raw_Data/TheGame_V01/nginx_metrics.csv")),
    ("TheGame_V02", include_str!("../../../tests/data/ntua_interference/Raw_Data/TheGame_V02/nginx_metrics.csv")),
    ("TheGame_V02_2", include_str!("../../../tests/data/ntua_interference/Raw_Data/TheGame_V02_2/nginx_metrics.csv")),
    ("TheGame_V03", include_str!("../../../tests/data/ntua_interference/Raw_Data/TheGame_V03/nginx_metrics.csv")),
    ("TheGame_V04", include_str!("../../../tests/data/ntua_interference/Raw_Data/TheGame_V04/nginx_metrics.csv")),
    ("The_Substance_V01", include_str!("../../../tests/data/ntua_interference/Raw_Data/The_Substance_V01/nginx_metrics.csv")),
];

include!(concat!(env!("OUT_DIR"), "/ntua_pcm.rs"));
