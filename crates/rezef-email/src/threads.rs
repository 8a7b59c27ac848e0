//! [`ThreadIndex`]: which thread (interaction and customer) each message Rezef was given
//! belongs to, so that a reply continues it. A file in the adapter's data directory, one
//! line a message (`<BLAKE3 of the Message-ID, hex>\t<interaction id>\t<customer>`),
//! appended and fsynced once the message's events are accepted; read whole at start.
//!
//! A crash can tear only the last line, which is dropped on opening (its message is still
//! in `new/`, or was not acknowledged to the mail server, and is taken again with the same
//! ids). A line damaged elsewhere stops the adapter rather than thread replies wrongly.
//! The index grows by one short line a message; no maintained crate was needed for that
//! (sled would be a second database for a hash map).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::translate::{Thread, Threads};

#[derive(Debug)]
pub struct ThreadIndex {
    path: PathBuf,
    file: File,
    threads: HashMap<String, Thread>,
}

fn key(message_id: &str) -> String {
    blake3::hash(message_id.as_bytes()).to_hex().to_string()
}

impl ThreadIndex {
    /// Opens (or creates) the index at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(path)(e)),
        };
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut threads = HashMap::new();
        for (i, line) in text[..complete].split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let corrupt = || Error::IndexCorrupt {
                path: path.to_owned(),
                line: i + 1,
            };
            let line = std::str::from_utf8(line).map_err(|_| corrupt())?;
            let mut fields = line.split('\t');
            let (Some(key), Some(interaction), Some(customer), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(corrupt());
            };
            let thread = Thread {
                interaction_id: interaction.to_owned(),
                customer: customer.to_owned(),
            };
            threads.insert(key.to_owned(), thread);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(Error::io(path))?;
        // Cut a torn last line so that the next append starts a line of its own.
        file.set_len(complete as u64).map_err(Error::io(path))?;
        Ok(Self {
            path: path.to_owned(),
            file,
            threads,
        })
    }

    /// Remembers `message_id`'s thread, on disk before it returns.
    pub fn record(&mut self, message_id: &str, thread: &Thread) -> Result<()> {
        let key = key(message_id);
        if self.threads.get(&key) == Some(thread) {
            return Ok(());
        }
        let line = format!("{key}\t{}\t{}\n", thread.interaction_id, thread.customer);
        (self.file.write_all(line.as_bytes()))
            .and_then(|()| self.file.sync_data())
            .map_err(Error::io(&self.path))?;
        self.threads.insert(key, thread.clone());
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.threads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

impl Threads for ThreadIndex {
    fn thread_of(&self, message_id: &str) -> Option<Thread> {
        self.threads.get(&key(message_id)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(n: u8) -> Thread {
        Thread {
            interaction_id: format!("email-{n}"),
            customer: format!("c{n}@example.com"),
        }
    }

    #[test]
    fn recorded_threads_survive_a_reopen_and_a_torn_line_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("threads");
        let mut index = ThreadIndex::open(&path).expect("opens");
        index.record("a@x", &thread(1)).expect("records");
        index.record("b@x", &thread(2)).expect("records");
        drop(index);
        let mut file = OpenOptions::new().append(true).open(&path).expect("opens");
        file.write_all(b"deadbeef\temail-").expect("writes");
        drop(file);

        let mut index = ThreadIndex::open(&path).expect("reopens");
        assert_eq!(index.thread_of("a@x"), Some(thread(1)));
        assert_eq!(index.thread_of("b@x"), Some(thread(2)));
        assert_eq!(index.len(), 2);
        index
            .record("c@x", &thread(3))
            .expect("records after the cut");
        drop(index);
        let index = ThreadIndex::open(&path).expect("reopens");
        assert_eq!(index.thread_of("c@x"), Some(thread(3)));
    }

    #[test]
    fn a_damaged_line_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("threads");
        std::fs::write(&path, "only-one-field\n").expect("writes");
        assert!(matches!(
            ThreadIndex::open(&path),
            Err(Error::IndexCorrupt { line: 1, .. })
        ));
    }

    proptest::proptest! {
        // Each record is an fsync: fewer cases than the default keep this under a second.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// The index reopened holds what was recorded, the latest entry of a message winning,
        /// as a map would.
        #[test]
        fn a_reopened_index_is_the_map_recorded(
            entries in proptest::collection::vec((0u8..8, 0u8..4), 0..20),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("threads");
            let mut index = ThreadIndex::open(&path).expect("opens");
            let mut model = HashMap::new();
            for (message, n) in entries {
                let id = format!("m{message}@x");
                index.record(&id, &thread(n)).expect("records");
                model.insert(id, thread(n));
            }
            drop(index);
            let index = ThreadIndex::open(&path).expect("reopens");
            proptest::prop_assert_eq!(index.len(), model.len());
            for (id, thread) in &model {
                proptest::prop_assert_eq!(index.thread_of(id), Some(thread.clone()));
            }
        }
    }
}
