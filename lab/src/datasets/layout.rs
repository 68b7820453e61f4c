//! Where NTUA-format runs put nginx and its co-runners, and which cores form each node: the
//! manifest that turns a machine's per-core PCM files into per-node counters and tells a
//! plant which side of the co-runners each run measured (`lab/ntua-layout.toml` is the
//! NTUA machine's; `--layout FILE` reads another).

use std::collections::BTreeMap;
use std::path::Path;

use dcpilot_schemas::TelemetrySample;
use serde::Deserialize;

use super::TraceError;

/// The label naming the node nginx's replicas ran on in a test (from the layout).
pub const NGINX_NODE: &str = "nginx_node";
/// The label naming the node the co-runners ran on in a test (from the layout).
pub const CO_RUNNER_NODE: &str = "co_runner_node";
/// The label naming the node a per-node counter sample measures.
pub const NODE: &str = "node";

/// The manifest: nodes by their cores, and what each run family did.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Node name → the cores (PCM's `CoreN`) that form it.
    pub nodes: BTreeMap<String, Vec<usize>>,
    /// Run families, first match wins.
    #[serde(default)]
    pub runs: Vec<RunLayout>,
}

/// Where one family of runs put nginx and its co-runners.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunLayout {
    /// A run belongs here when its name contains this.
    pub pattern: String,
    /// The node every nginx replica ran on; unset: split, as the test's replicas say.
    #[serde(default)]
    pub nginx: Option<String>,
    /// The node the co-runners ran on.
    pub co_runners: String,
}

impl Layout {
    /// The NTUA machine's layout (`lab/ntua-layout.toml`).
    pub fn ntua() -> Self {
        Self::parse(
            Path::new("lab/ntua-layout.toml"),
            include_str!("../../ntua-layout.toml"),
        )
        .expect("the embedded NTUA layout is valid (tested)")
    }

    /// Reads a layout file.
    pub fn from_file(path: &Path) -> Result<Self, TraceError> {
        let text = std::fs::read_to_string(path).map_err(super::io(path))?;
        Self::parse(path, &text)
    }

    /// Parses and checks a layout; errors name `path` and the key.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TraceError> {
        let layout: Layout =
            toml::from_str(text).map_err(|e| super::format_error(path, e.to_string()))?;
        if layout.nodes.is_empty() {
            return Err(super::format_error(path, "nodes: name at least one node"));
        }
        let mut owner: BTreeMap<usize, &str> = BTreeMap::new();
        for (node, cores) in &layout.nodes {
            if cores.is_empty() {
                return Err(super::format_error(
                    path,
                    format!("nodes.{node}: list its cores"),
                ));
            }
            for core in cores {
                if let Some(other) = owner.insert(*core, node) {
                    return Err(super::format_error(
                        path,
                        format!("nodes.{node}: core {core} is already node {other}'s"),
                    ));
                }
            }
        }
        for (i, run) in layout.runs.iter().enumerate() {
            if run.pattern.is_empty() {
                return Err(super::format_error(
                    path,
                    format!("runs[{i}].pattern: must not be empty"),
                ));
            }
            for (key, node) in [
                ("nginx", run.nginx.as_ref()),
                ("co_runners", Some(&run.co_runners)),
            ] {
                if let Some(node) = node.filter(|n| !layout.nodes.contains_key(*n)) {
                    return Err(super::format_error(
                        path,
                        format!("runs[{i}].{key}: no node {node:?} under [nodes]"),
                    ));
                }
            }
        }
        Ok(layout)
    }

    /// The family of run `run`, if the layout names it.
    pub fn of_run(&self, run: &str) -> Option<&RunLayout> {
        self.runs.iter().find(|r| run.contains(&r.pattern))
    }

    /// Labels every test sample of a run the layout knows with where nginx
    /// ([`NGINX_NODE`], when not split) and its co-runners ([`CO_RUNNER_NODE`]) ran.
    pub fn label(&self, samples: &mut [TelemetrySample]) {
        for s in samples {
            let Some(family) = s.labels.get("run").and_then(|run| self.of_run(run)) else {
                continue;
            };
            let (nginx, co_runners) = (family.nginx.clone(), family.co_runners.clone());
            if let Some(nginx) = nginx {
                s.labels.insert(NGINX_NODE.into(), nginx);
            }
            s.labels.insert(CO_RUNNER_NODE.into(), co_runners);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ntua_layout_reads() {
        let layout = Layout::ntua();
        assert_eq!(layout.nodes["node2"], [3, 4, 5]);
        assert_eq!(
            layout
                .of_run("TheGame_MIX_V01")
                .map(|r| r.co_runners.as_str()),
            Some("node1")
        );
        assert_eq!(layout.of_run("Elsewhere"), None);
    }

    #[test]
    fn bad_layouts_name_the_file_and_key() {
        let path = Path::new("layout.toml");
        for (text, expected) in [
            ("[nodes]\n", "nodes: name at least one node"),
            (
                "[nodes]\na = [0]\nb = [0, 1]\n",
                "nodes.b: core 0 is already node a's",
            ),
            (
                "[nodes]\na = [0]\n[[runs]]\npattern = \"X\"\nco_runners = \"z\"\n",
                "runs[0].co_runners: no node \"z\"",
            ),
            ("[nodes]\na = [0]\ncolour = 1\n", "layout.toml"),
            (
                "[nodes]\na = [0]\n[[runs]]\npattern = \"X\"\nco_runners = \"a\"\nwhere = 1\n",
                "unknown field `where`",
            ),
        ] {
            let e = Layout::parse(path, text).expect_err(text).to_string();
            assert!(e.contains(expected) && e.starts_with("layout.toml"), "{e}");
        }
    }
}
