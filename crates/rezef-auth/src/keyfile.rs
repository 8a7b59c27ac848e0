//! The key file: every credential a server accepts, hashed, as JSON. `rezef keys` writes it
//! (a new file, then a rename, so a server reading it never sees half of one); the server
//! reads it at start and again when it changes, so a revocation needs no restart. On
//! Kubernetes it is a mounted secret, shared by every node.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Credential, Error, NewKey, Token, Unauthenticated};

const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    version: u32,
    keys: Vec<Credential>,
}

/// The credentials a server accepts, found by key id.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    by_id: HashMap<String, Arc<Credential>>,
}

impl Keys {
    pub fn new(credentials: impl IntoIterator<Item = Credential>) -> Self {
        let by_id = (credentials.into_iter())
            .map(|c| (c.id.clone(), Arc::new(c)))
            .collect();
        Self { by_id }
    }

    /// The credential `token` proves. Unknown, wrong and revoked keys answer alike.
    pub fn authenticate(&self, token: &Token) -> Result<Arc<Credential>, Unauthenticated> {
        match self.by_id.get(&token.id) {
            Some(credential) if credential.proves(&token.secret) => Ok(credential.clone()),
            _ => Err(Unauthenticated::Unknown),
        }
    }

    /// Keys that let someone in (not revoked).
    pub fn active(&self) -> usize {
        self.by_id.values().filter(|c| !c.revoked).count()
    }
}

/// A key file on disk.
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every credential in the file, oldest first; none if there is no file.
    pub fn list(&self) -> Result<Vec<Credential>, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io(source)),
        };
        let stored: Stored =
            serde_json::from_str(&text).map_err(|e| self.invalid(e.to_string()))?;
        if stored.version != VERSION {
            return Err(self.invalid(format!(
                "version {} (this Rezef reads version {VERSION})",
                stored.version
            )));
        }
        Ok(stored.keys)
    }

    pub fn load(&self) -> Result<Keys, Error> {
        Ok(Keys::new(self.list()?))
    }

    /// Makes a key and adds it to the file; the token is the only copy of its secret.
    pub fn create(&self, key: NewKey, now_secs: u64) -> Result<(Credential, Token), Error> {
        let mut keys = self.list()?;
        let (credential, token) = key.make(now_secs)?;
        keys.push(credential.clone());
        self.write(keys)?;
        Ok((credential, token))
    }

    /// Revokes the key `id`: from the next read of the file on, it lets nobody in.
    pub fn revoke(&self, id: &str) -> Result<Credential, Error> {
        let mut keys = self.list()?;
        let key = (keys.iter_mut())
            .find(|k| k.id == id)
            .ok_or_else(|| Error::Request(format!("no key `{id}` in {}", self.path.display())))?;
        key.revoked = true;
        let revoked = key.clone();
        self.write(keys)?;
        Ok(revoked)
    }

    fn write(&self, keys: Vec<Credential>) -> Result<(), Error> {
        let stored = Stored {
            version: VERSION,
            keys,
        };
        let text =
            serde_json::to_string_pretty(&stored).map_err(|e| self.invalid(e.to_string()))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let partial = self.path.with_extension("partial");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&partial).map_err(|e| self.io(e))?;
        (file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&partial, &self.path))
            .map_err(|e| self.io(e))
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn invalid(&self, reason: String) -> Error {
        Error::Invalid {
            path: self.path.display().to_string(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Role, Scope};

    fn adapter_of(tenant: &str) -> NewKey {
        NewKey {
            name: format!("{tenant} adapter"),
            sources: vec!["ivr".into()],
            ..NewKey::new(Scope::Tenant(tenant.into()), [Role::Adapter])
        }
    }

    #[test]
    fn a_created_key_authenticates_until_it_is_revoked() {
        let dir = tempfile::tempdir().expect("dir");
        let file = KeyFile::new(dir.path().join("keys.json"));
        assert_eq!(file.load().expect("no file yet").active(), 0);

        let (credential, token) = file.create(adapter_of("acme"), 7).expect("created");
        let (_, other) = file.create(adapter_of("globex"), 8).expect("created");
        let keys = file.load().expect("read");
        assert_eq!(keys.active(), 2);
        assert_eq!(*keys.authenticate(&token).expect("known"), credential);
        assert_eq!(
            keys.authenticate(&other).expect("known").tenant,
            Scope::Tenant("globex".into())
        );

        let forged = Token {
            id: token.id.clone(),
            secret: other.secret.clone(),
        };
        assert_eq!(keys.authenticate(&forged), Err(Unauthenticated::Unknown));

        file.revoke(&credential.id).expect("revoked");
        let keys = file.load().expect("read");
        assert_eq!(keys.authenticate(&token), Err(Unauthenticated::Unknown));
        assert_eq!(keys.active(), 1);
        assert!(file.revoke("nope").is_err());
    }

    #[test]
    fn the_file_keeps_no_secret_and_only_its_owner_reads_it() {
        let dir = tempfile::tempdir().expect("dir");
        let file = KeyFile::new(dir.path().join("conf/keys.json"));
        let (_, token) = file.create(adapter_of("acme"), 7).expect("created");
        let text = std::fs::read_to_string(file.path()).expect("written");
        assert!(!text.contains(&token.secret));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_of_another_kind_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys.json");
        std::fs::write(&path, "{\"version\": 9, \"keys\": []}").expect("write");
        let error = KeyFile::new(&path).load().expect_err("version 9");
        assert!(error.to_string().contains("version 9"), "{error}");
        std::fs::write(&path, "not json").expect("write");
        assert!(KeyFile::new(&path).load().is_err());
    }
}
