//! The adapter's configuration: defaults, then a TOML file, then `REZEF_EMAIL_` variables
//! (`__` between levels: `REZEF_EMAIL_REZEF__URL`), then `validate()` (the server's
//! layering). Unknown keys are refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use rezef_adapter::spool::SpoolLimits;
use rezef_adapter::{Client, PublisherConfig, TlsOptions};
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
    /// The adapter's own files: the thread index, the spool (unless `[spool] dir`), the
    /// attachments (unless `[attachments] dir`) and `failed/`.
    pub data_dir: PathBuf,
    /// Which header names the customer: `from` or `reply-to`.
    pub sender: SenderHeader,
    /// The company's addresses (`support@acme.com`) and domains (`@acme.com`): what comes
    /// from them is an agent's message.
    pub company_addresses: Vec<String>,
    pub maildir: MaildirConfig,
    pub attachments: AttachmentsConfig,
    pub rezef: RezefConfig,
    pub spool: SpoolConfig,
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentsConfig {
    /// Where attachment bytes are kept; `<data_dir>/attachments` by default.
    pub dir: Option<PathBuf>,
    /// The URI an attachment's hash is appended to in events, for a store that serves the
    /// directory (`https://files.acme.example/mail/`); `file://<dir>/` by default.
    pub uri_base: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RezefConfig {
    /// The server, `http://` or `https://`.
    pub url: String,
    /// An API key (`rezef keys create`), sent on every call.
    pub api_key: Option<String>,
    /// PEM CA certificates that signed the server's certificate (for `https://`).
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// `<data_dir>/spool` by default.
    pub dir: Option<PathBuf>,
    /// The bound of events waiting for the server (1 GiB by default).
    pub max_bytes: Option<u64>,
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
            rezef: RezefConfig::default(),
            spool: SpoolConfig::default(),
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

impl Default for RezefConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:50051".into(),
            api_key: None,
            ca_file: None,
        }
    }
}

/// Reads the configuration from `file` (which must exist, if given) and the environment.
pub fn load(file: Option<&Path>) -> Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(Error::Config(format!("{} does not exist", file.display())));
        }
        figment = figment.merge(Toml::file(file));
    }
    let config: Config = figment
        .merge(Env::prefixed("REZEF_EMAIL_").split("__"))
        .extract()
        .map_err(|e| Error::Config(e.to_string()))?;
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

    pub fn attachment_dir(&self) -> PathBuf {
        (self.attachments.dir.clone()).unwrap_or_else(|| self.data_dir.join("attachments"))
    }

    pub fn failed_dir(&self) -> PathBuf {
        self.data_dir.join("failed")
    }

    pub fn thread_index(&self) -> PathBuf {
        self.data_dir.join("threads")
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
        let tls = match &self.rezef.ca_file {
            Some(path) => Some(TlsOptions {
                ca_pem: Some(std::fs::read(path).map_err(Error::io(path))?),
                identity_pem: None,
                domain: None,
            }),
            None => None,
        };
        let client = Client::connect_lazy(self.rezef.url.clone(), tls)?;
        Ok(match &self.rezef.api_key {
            Some(key) => client.with_token(key.clone())?,
            None => client,
        })
    }

    pub fn publisher(&self) -> PublisherConfig {
        let dir = (self.spool.dir.clone()).unwrap_or_else(|| self.data_dir.join("spool"));
        let mut config = PublisherConfig::new(dir);
        if let Some(max_bytes) = self.spool.max_bytes {
            config.spool = SpoolLimits {
                max_bytes,
                ..SpoolLimits::default()
            };
        }
        config
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
                    [spool]\nmax_bytes = 1000000\n";
        std::fs::write(&file, text).expect("writes");
        let config = load(Some(&file)).expect("loads");
        assert_eq!(config.maildir.poll_interval, Duration::from_secs(5));
        assert_eq!(config.rezef.url, "http://127.0.0.1:50051");
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
