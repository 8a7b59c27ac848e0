//! `rezef keys`: the API keys a server accepts, kept in its key file. `create` prints a new
//! key's token once (the file keeps only its hash), `list` shows what each key may do and
//! never a secret, `revoke` shuts a key out without a restart (the server re-reads the file).
//! The file is the one `rezef serve` would use, found through the same configuration layers,
//! unless `--keys-file` names it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rezef_auth::{Credential, KeyFile, Limits, NewKey, Role, Scope};

use crate::config::{self, Overrides};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// The key file [default: the server's `auth.keys_file`, or <data-dir>/keys.json].
    #[arg(long, global = true)]
    keys_file: Option<PathBuf>,
    /// The server's data directory, as for `rezef serve` [default: ./rezef-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// The server's TOML configuration file, as for `rezef serve`.
    #[arg(long, env = "REZEF_CONFIG", global = true)]
    config: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Make a key; prints its token (only the token, on standard output) this once.
    Create(Create),
    /// Every key: id, tenant, roles, sources, agent, verify grant, when made, if revoked.
    List,
    /// Revoke a key: the server lets it in no more once it re-reads the file.
    Revoke {
        /// The key's id, as `rezef keys list` shows it.
        id: String,
    },
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["tenant", "all_tenants"])))]
struct Create {
    /// The tenant the key acts for.
    #[arg(long)]
    tenant: Option<String>,
    /// The key acts for every tenant (operators, and other nodes with `--role node`).
    #[arg(long)]
    all_tenants: bool,
    /// What the key may do; repeat or separate by commas.
    #[arg(
        long = "role",
        value_name = "ROLE",
        required = true,
        value_delimiter = ','
    )]
    roles: Vec<Role>,
    /// For `adapter` keys: an event source it may publish as; repeat for more [default: any].
    #[arg(long = "source", value_name = "SOURCE")]
    sources: Vec<String>,
    /// For `agent` keys (required with them): the one agent the key is.
    #[arg(long, value_name = "AGENT_ID")]
    agent: Option<String>,
    /// The `verify` grant: a verification method (`pin`, `one_time_code`, ..., or `*`) the
    /// key may assert above low assurance; repeat or separate by commas [default: none].
    #[arg(long = "verify", value_name = "METHOD", value_delimiter = ',')]
    verify: Vec<String>,
    /// A label for people, e.g. "ivr adapter, site A".
    #[arg(long)]
    name: Option<String>,
    /// This key's calls a second, instead of the server's `[auth.limits]`.
    #[arg(long)]
    calls_per_second: Option<u32>,
    /// This key's burst of calls above its rate.
    #[arg(long)]
    burst: Option<u32>,
    /// This key's streams open at once (watches, sessions).
    #[arg(long)]
    streams: Option<u32>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let file = KeyFile::new(keys_file(&args)?);
    match args.action {
        Action::Create(key) => create(&file, key),
        Action::List => list(&file),
        Action::Revoke { id } => revoke(&file, &id),
    }
}

/// `--keys-file`, else where `rezef serve` would look: the configuration layered as for it.
fn keys_file(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.keys_file {
        return Ok(path.clone());
    }
    let overrides = Overrides {
        data_dir: args.data_dir.clone(),
        ..Overrides::default()
    };
    let config = config::load(args.config.as_deref(), overrides)?;
    Ok(config.auth.keys_file(&config.data_dir))
}

fn create(file: &KeyFile, key: Create) -> anyhow::Result<()> {
    // The group makes the two exclusive and one of them required.
    let tenant = match key.tenant {
        Some(tenant) => Scope::Tenant(tenant),
        None => Scope::All,
    };
    let own_limits = key.calls_per_second.is_some() || key.burst.is_some() || key.streams.is_some();
    let limits = own_limits.then(|| {
        let defaults = Limits::default();
        Limits {
            calls_per_second: key.calls_per_second.unwrap_or(defaults.calls_per_second),
            burst: key.burst.unwrap_or(defaults.burst),
            streams: key.streams.unwrap_or(defaults.streams),
        }
    });
    let key = NewKey {
        name: key.name.unwrap_or_default(),
        sources: key.sources,
        agent: key.agent,
        verify: key.verify,
        limits,
        ..NewKey::new(tenant, key.roles)
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let (credential, token) = file.create(key, now.as_secs())?;
    println!("{token}");
    eprintln!(
        "created key {} for {} with {} in {}; the token above is shown once: store it now",
        credential.id,
        scope(&credential.tenant),
        roles(&credential.roles),
        file.path().display()
    );
    Ok(())
}

fn list(file: &KeyFile) -> anyhow::Result<()> {
    let keys = file.list()?;
    if keys.is_empty() {
        eprintln!("no keys in {}", file.path().display());
        return Ok(());
    }
    print!("{}", table(&keys));
    Ok(())
}

fn revoke(file: &KeyFile, id: &str) -> anyhow::Result<()> {
    let already = (file.list()?.iter()).any(|key| key.id == id && key.revoked);
    let key = file.revoke(id)?;
    let what = if already {
        "was already revoked"
    } else {
        "revoked"
    };
    eprintln!(
        "key {} ({}) {what}: the server refuses it once it re-reads {}",
        key.id,
        scope(&key.tenant),
        file.path().display()
    );
    Ok(())
}

/// The keys as aligned columns, a header first; the name, free text, last.
fn table(keys: &[Credential]) -> String {
    let header = [
        "ID", "TENANT", "ROLES", "SOURCES", "AGENT", "VERIFY", "CREATED", "REVOKED", "NAME",
    ];
    let list = |items: &[String], none: &str| match items.is_empty() {
        true => none.to_owned(),
        false => items.join(","),
    };
    let rows: Vec<[String; 9]> = (keys.iter())
        .map(|key| {
            let created = UNIX_EPOCH + Duration::from_secs(key.created_at);
            [
                key.id.clone(),
                key.tenant.to_string(),
                (key.roles.iter().map(|r| r.as_str()))
                    .collect::<Vec<_>>()
                    .join(","),
                list(&key.sources, "*"),
                key.agent.clone().unwrap_or_else(|| "-".to_owned()),
                list(&key.verify, "-"),
                humantime::format_rfc3339_seconds(created).to_string(),
                if key.revoked { "yes" } else { "no" }.to_owned(),
                key.name.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 9]| {
        let padded: Vec<String> = (cells.iter().zip(widths))
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

fn scope(scope: &Scope) -> String {
    match scope {
        Scope::All => "all tenants".to_owned(),
        Scope::Tenant(tenant) => format!("tenant {tenant}"),
    }
}

fn roles(roles: &BTreeSet<Role>) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    match names.as_slice() {
        [one] => format!("the role {one}"),
        _ => format!("the roles {}", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, tenant: Scope, roles: &[Role], revoked: bool) -> Credential {
        Credential {
            id: id.into(),
            name: "ivr, site A".into(),
            tenant,
            roles: roles.iter().copied().collect(),
            sources: Vec::new(),
            agent: None,
            verify: Vec::new(),
            limits: None,
            created_at: 1_700_000_000,
            secret_hash: "0123abcd".into(),
            revoked,
        }
    }

    #[test]
    fn the_table_aligns_its_columns_and_shows_no_hash() {
        let keys = [
            Credential {
                verify: vec!["pin".into(), "one_time_code".into()],
                ..key("a1", Scope::Tenant("acme".into()), &[Role::Adapter], false)
            },
            key("b2", Scope::All, &[Role::Node, Role::Admin], true),
            Credential {
                agent: Some("a-17".into()),
                ..key("c3", Scope::Tenant("acme".into()), &[Role::Agent], false)
            },
        ];
        let table = table(&keys);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "ID  TENANT  ROLES       SOURCES  AGENT  VERIFY             CREATED               REVOKED  NAME",
                "a1  acme    adapter     *        -      pin,one_time_code  2023-11-14T22:13:20Z  no       ivr, site A",
                "b2  *       admin,node  *        -      -                  2023-11-14T22:13:20Z  yes      ivr, site A",
                "c3  acme    agent       *        a-17   -                  2023-11-14T22:13:20Z  no       ivr, site A",
            ]
        );
        assert!(!table.contains("0123abcd"));
    }
}
