//! `s1-emulator`: run the SentinelOne API emulator until Ctrl-C.

use clap::Parser;
use s1_emulator::{EmulatorConfig, DEFAULT_ACCOUNT_ID, DEFAULT_ACCOUNT_NAME, DEFAULT_TOKEN};

#[derive(Parser, Debug)]
#[command(
    name = "s1-emulator",
    about = "SentinelOne Management API emulator (loopback, for tests and demos)"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: std::net::SocketAddr,
    /// API token accepted by the emulator, scoped to every configured account and site
    /// (repeatable; default: s1-demo-token).
    #[arg(long = "token", value_name = "TOKEN")]
    tokens: Vec<String>,
    /// Account as ID[:NAME] (repeatable; default: 123456789:DB Audit Demo).
    #[arg(long = "account", value_name = "ID[:NAME]")]
    accounts: Vec<String>,
    /// Site as ID:ACCOUNT_ID[:NAME] (repeatable; default: 987654321 in the first account).
    #[arg(long = "site", value_name = "ID:ACCOUNT_ID[:NAME]")]
    sites: Vec<String>,
    /// Enforce SentinelOne's per-path rate limits (429 nginx page).
    #[arg(long)]
    rate_limits: bool,
    /// Bodies above this many bytes answer 413.
    #[arg(long, default_value_t = s1_emulator::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Accept events and rules without validating them.
    #[arg(long)]
    no_validate: bool,
}

fn build_config(cli: &Cli) -> anyhow::Result<EmulatorConfig> {
    let mut cfg = EmulatorConfig::empty()
        .rate_limits(cli.rate_limits)
        .max_body_bytes(cli.max_body_bytes)
        .validate(!cli.no_validate);
    if cli.accounts.is_empty() {
        cfg = cfg.with_account(DEFAULT_ACCOUNT_ID, DEFAULT_ACCOUNT_NAME);
    }
    for a in &cli.accounts {
        let (id, name) = a.split_once(':').unwrap_or((a, ""));
        anyhow::ensure!(!id.is_empty(), "--account {a}: empty id");
        let name = if name.is_empty() {
            format!("Account {id}")
        } else {
            name.to_string()
        };
        cfg = cfg.with_account(id, name);
    }
    if cli.sites.is_empty() {
        let account = cfg.accounts[0].id.clone();
        cfg = cfg.with_site(
            s1_emulator::DEFAULT_SITE_ID,
            account,
            s1_emulator::DEFAULT_SITE_NAME,
        );
    }
    for s in &cli.sites {
        let mut parts = s.splitn(3, ':');
        let (Some(id), Some(account)) = (parts.next(), parts.next()) else {
            anyhow::bail!("--site {s}: expected ID:ACCOUNT_ID[:NAME]");
        };
        let name = parts
            .next()
            .map(String::from)
            .unwrap_or_else(|| format!("Site {id}"));
        cfg = cfg.with_site(id, account, name);
    }
    let tokens = if cli.tokens.is_empty() {
        vec![DEFAULT_TOKEN.to_string()]
    } else {
        cli.tokens.clone()
    };
    for t in tokens {
        cfg = cfg.with_full_token(t);
    }
    cfg.check()?;
    Ok(cfg)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = build_config(&cli)?;
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    let addr = listener.local_addr()?;
    println!("s1-emulator listening on http://{addr}");
    for a in &cfg.accounts {
        println!("  account {} ({})", a.id, a.name);
    }
    for s in &cfg.sites {
        println!("  site {} ({}) in account {}", s.id, s.name, s.account_id);
    }
    println!(
        "  {} token(s); control API at http://{addr}/_emulator/",
        cfg.tokens.len()
    );
    s1_emulator::serve_with_shutdown(cfg, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
