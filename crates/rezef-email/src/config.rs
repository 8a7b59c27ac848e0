//! The adapter's configuration, layered as every reference adapter's (the SDK's `service`
//! runtime): defaults, then a TOML file, then `REZEF_EMAIL_` variables (`__` between
//! levels: `REZEF_EMAIL_REZEF__API_KEY`), then `validate()`. Unknown keys are refused.
//! `[rezef]`, `[spool]` and `[http]` are the runtime's; the rest is the adapter's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rezef_adapter::service::{self, HttpSettings, RezefSettings, SpoolSettings};
use rezef_adapter::{Client, PublisherConfig};
use serde::{Deserialize, Serialize};

use crate::attachments::file_uri_base;
use crate::error::{Error, Result};
use crate::translate::{SenderHeader, Settings};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The tenant every event belongs to. Required.
    pub tenant: String,
    /// The events' `source`.
    pub source: String,
    /// The adapter's own files: the thread index, the spool and the attachments (when their
    /// directories are relative) and `failed/`.
    pub data_dir: PathBuf,
    /// Which header names the customer: `from` or `reply-to`.
    pub sender: SenderHeader,
    /// The company's addresses (`support@acme.com`) and domains (`@acme.com`): what comes
    /// from them is an agent's message.
    pub company_addresses: Vec<String>,
    pub maildir: MaildirConfig,
    pub attachments: AttachmentsConfig,
    pub rezef: RezefSettings,
    /// `dir` relative: under `data_dir` (`spool` by default).
    pub spool: SpoolSettings,
    /// Health and metrics of `rezef-email maildir`.
    pub http: HttpSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaildirConfig {
    /// The maildir (with `new/` and `cur/`) `rezef-email maildir` reads.
    pub path: Option<PathBuf>,
    /// How often `new/` is looked at.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentsConfig {
    /// Where attachment bytes are kept; relative: under `data_dir`.
    pub dir: PathBuf,
    /// The URI an attachment's hash is appended to in events, for a store that serves the
    /// directory (`https://files.acme.example/mail/`); `file://<dir>/` by default.
    pub uri_base: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tenant: String::new(),
            source: "email".into(),
            data_dir: PathBuf::from("rezef-email-data"),
            sender: SenderHeader::From,
            company_addresses: Vec::new(),
            maildir: MaildirConfig::default(),
            attachments: AttachmentsConfig::default(),
            rezef: RezefSettings::default(),
            spool: SpoolSettings::default(),
            http: HttpSettings::default(),
        }
    }
}

impl Default for MaildirConfig {
    fn default() -> Self {
        Self {
            path: None,
            poll_interval: Duration::from_secs(2),
        }
    }
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("attachments"),
            uri_base: None,
        }
    }
}

/// Reads the configuration from `file` (which must exist, if given) and the environment.
pub fn load(file: Option<&Path>) -> Result<Config> {
    let config: Config = service::load(file, "REZEF_EMAIL_").map_err(|e| match e {
        rezef_adapter::Error::Config(why) => Error::Config(why),
        other => Error::Config(other.to_string()),
    })?;
    config.validate()?;
    Ok(config)
}

impl Config {
    pub fn validate(&self) -> Result<()> {
        let fail = |what: &str| Err(Error::Config(what.to_owned()));
        if self.tenant.is_empty() {
            return fail("tenant is required");
        }
        for entry in &self.company_addresses {
            let valid = match entry.strip_prefix('@') {
                Some(domain) => crate::mail::normalise(&format!("x@{domain}")).is_some(),
                None => crate::mail::normalise(entry).is_some(),
            };
            if !valid {
                return fail(&format!(
                    "company_addresses: {entry:?} is neither an address nor @domain"
                ));
            }
        }
        if let Some(base) = &self.attachments.uri_base
            && (base.is_empty() || base.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return fail("attachments.uri_base must be a URI without spaces");
        }
        if self.maildir.poll_interval.is_zero() {
            return fail("maildir.poll_interval must be more than 0");
        }
        Ok(())
    }

    /// `path`, or under `data_dir` when relative.
    fn under_data(&self, path: &Path) -> PathBuf {
        self.data_dir.join(path)
    }

    pub fn attachment_dir(&self) -> PathBuf {
        self.under_data(&self.attachments.dir)
    }

    pub fn failed_dir(&self) -> PathBuf {
        self.data_dir.join("failed")
    }

    pub fn thread_index(&self) -> PathBuf {
        self.data_dir.join("threads")
    }

    /// `[spool]` with its directory under `data_dir` when relative.
    pub fn spool(&self) -> SpoolSettings {
        SpoolSettings {
            dir: self.under_data(&self.spool.dir),
            ..self.spool.clone()
        }
    }

    /// What the core needs.
    pub fn settings(&self) -> Result<Settings> {
        let attachment_uri_base = match &self.attachments.uri_base {
            Some(base) => base.clone(),
            None => file_uri_base(&self.attachment_dir())?,
        };
        Ok(Settings {
            tenant: self.tenant.clone(),
            source: self.source.clone(),
            sender: self.sender,
            company: (self.company_addresses.iter())
                .map(|a| a.trim().to_lowercase())
                .collect(),
            attachment_uri_base,
        })
    }

    /// The client to the server (connecting on first use, so the adapter starts while the
    /// server is down).
    pub fn client(&self) -> Result<Client> {
        Ok(self.rezef.client()?)
    }

    pub fn publisher(&self) -> PublisherConfig {
        self.spool().publisher_config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_what_it_names_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("email.toml");
        let text = "tenant = \"acme\"\ndata_dir = \"/var/lib/rezef-email\"\n\
                    sender = \"reply-to\"\ncompany_addresses = [\"Support@Acme.test\", \"@acme.test\"]\n\
                    [maildir]\npath = \"/var/mail/support\"\npoll_interval = \"5s\"\n\
                    [attachments]\nuri_base = \"https://files.acme.test/mail/\"\n\
                    [spool]\nmax_bytes = 1000000\n[http]\nlisten = \"127.0.0.1:9025\"\n";
        std::fs::write(&file, text).expect("writes");
        let config = load(Some(&file)).expect("loads");
        assert_eq!(config.maildir.poll_interval, Duration::from_secs(5));
        assert_eq!(config.rezef.address, "http://127.0.0.1:50051");
        assert_eq!(config.http.listen.port(), 9025);
        assert_eq!(
            config.attachment_dir(),
            Path::new("/var/lib/rezef-email/attachments")
        );
        assert_eq!(config.publisher().spool.max_bytes, 1_000_000);
        assert_eq!(
            config.publisher().spool_dir,
            Path::new("/var/lib/rezef-email/spool")
        );
        let settings = config.settings().expect("settings");
        assert_eq!(settings.sender, SenderHeader::ReplyTo);
        assert!(settings.is_company("support@acme.test"));
        assert!(settings.is_company("noa@acme.test"));
        assert!(!settings.is_company("noa@acme.test.example.com"));
        assert_eq!(
            settings.attachment_uri_base,
            "https://files.acme.test/mail/"
        );
    }

    #[test]
    fn the_deployed_example_loads() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rezef-email.toml");
        let config = load(Some(&file)).expect("deploy/rezef-email.toml loads");
        assert_eq!(config.spool().dir, Path::new("/var/lib/rezef-email/spool"));
        assert_eq!(config.http.listen.port(), 8091);
    }

    #[test]
    fn what_cannot_work_is_refused_naming_the_setting() {
        let refused = |config: Config, setting: &str| match config.validate() {
            Err(Error::Config(why)) => assert!(why.contains(setting), "{why}"),
            other => panic!("{setting}: {other:?}"),
        };
        refused(Config::default(), "tenant");
        let acme = || Config {
            tenant: "acme".into(),
            ..Config::default()
        };
        let mut config = acme();
        config.company_addresses = vec!["support".into()];
        refused(config, "company_addresses");
        let mut config = acme();
        config.attachments.uri_base = Some("file:///my mail/".into());
        refused(config, "uri_base");
        assert!(matches!(
            load(Some(Path::new("/nonexistent/email.toml"))),
            Err(Error::Config(_))
        ));
    }
}
