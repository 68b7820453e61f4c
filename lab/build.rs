//! Embeds the bundled NTUA runs' PCM counter files for `dcpilot demo`: one
//! `(run, file name, content)` entry per `pcm_system_*.csv` and `pcm_core_*.csv` under
//! `tests/data/ntua_interference/Raw_Data/` (too many to list by hand).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/ntua_interference/Raw_Data");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    if let Ok(runs) = std::fs::read_dir(&root) {
        for run in runs.flatten().filter(|r| r.path().is_dir()) {
            println!("cargo:rerun-if-changed={}", run.path().display());
            for file in std::fs::read_dir(run.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = file.file_name().to_string_lossy().into_owned();
                if (name.starts_with("pcm_system_") || name.starts_with("pcm_core_"))
                    && name.ends_with(".csv")
                {
                    files.push((
                        run.file_name().to_string_lossy().into_owned(),
                        name,
                        file.path(),
                    ));
                }
            }
        }
    }
    files.sort();
    let mut out = String::from("/// Bundled NTUA PCM system and per-core counter files: (run, file name, content).\npub const NTUA_PCM: &[(&str, &str, &str)] = &[\n");
    for (run, name, path) in &files {
        let _ = writeln!(
            out,
            "    ({run:?}, {name:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("ntua_pcm.rs");
    std::fs::write(dest, out).expect("write ntua_pcm.rs");
}
