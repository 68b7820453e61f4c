//! `dcpilot foreground`: the placement API, standalone or following the brokers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use dcpilot_foreground::ForegroundConfig;

/// Arguments of `dcpilot foreground`.
#[derive(clap::Args)]
pub struct ForegroundArgs {
    /// TOML configuration (see config/foreground.toml); defaults are embedded,
    /// `DCPILOT__FOREGROUND__SECTION__KEY` overrides.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address of the HTTP API (overrides `listen`); port 0 picks a free one, written to
    /// DATA_DIR/foreground.addr.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Bootstrap servers to follow dcpilot.models and dcpilot.landscape (overrides
    /// `sources.brokers`); without: standalone on the Information Core in --data-dir.
    #[arg(long)]
    brokers: Option<String>,
    /// A landscape to start from: JSON {"hosts": [...], "instances": [...]}.
    #[arg(long)]
    landscape: Option<PathBuf>,
    /// Bearer token for mutating endpoints (overrides `auth_token`).
    #[arg(long, env = "DCPILOT_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
}

/// Runs the API until SIGINT/SIGTERM.
pub async fn run(data_dir: &Path, args: ForegroundArgs) -> Result<ExitCode> {
    let mut config = ForegroundConfig::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(brokers) = args.brokers {
        config.sources.brokers = Some(brokers);
    }
    if let Some(path) = args.landscape {
        config.sources.landscape_file = Some(path);
    }
    if let Some(token) = args.auth_token {
        config.auth_token = Some(token);
    }
    dcpilot_lab::processes::foreground(data_dir, config).await?;
    Ok(ExitCode::SUCCESS)
}
