//! Records whose personal values are sealed (format `0x02`): crypto-shredding.
//!
//! An event's skeleton ([`rezef_events::personal::split`]) is stored as a record of the
//! other formats; its personal values are sealed beside it, one AEAD box per key (the key
//! of the customer or identity they belong to, from a [`KeyStore`]), with the event id and
//! the key id as associated data, so that a box cannot be moved to another event or key.
//!
//! ```text
//! 0x02 | boxes: u8 | per box: key id (16) | length: u32 LE | nonce and ciphertext | skeleton record
//! a box opens to: per value: slot: u16 LE | length: u32 LE | UTF-8
//! ```
//!
//! Reading with the keys puts the values back; a box whose key was destroyed (the customer
//! was forgotten) stays shut and the event reads erased (`Event::erased`). Reading without
//! the keys ([`crate::decode`]) gives the skeleton: what routing and measurement read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rezef_events::personal::{self, Taken};
use rezef_events::{CustomerRef, Event, TenantId};
use rezef_keys::{DataKey, KeyId, KeyStore, Nonces, Subject};

use crate::error::{Error, Result};

/// The format byte of a sealed record.
pub const SEALED: u8 = 0x02;

/// The key subject of a customer or identity: what forgetting names.
pub fn subject(tenant: &TenantId, owner: &CustomerRef) -> Subject {
    match owner {
        CustomerRef::Id(id) => Subject::customer(tenant.as_str(), id.as_str()),
        CustomerRef::Identity(identity) => Subject::identity(
            tenant.as_str(),
            identity.kind().as_str(),
            &identity.index_key(),
        ),
    }
}

/// Encodes events for the log with their personal values sealed, making the keys they
/// need (durably, once for the batch). Events with nothing personal are stored plain.
pub fn encode_all(events: &[Event], keys: &dyn KeyStore) -> Result<Vec<Vec<u8>>> {
    // Each owner's subject once for the batch: its values name it by its place.
    let mut owners: HashMap<(&TenantId, CustomerRef), usize> = HashMap::new();
    let mut subjects: Vec<Subject> = Vec::new();
    let mut split = Vec::with_capacity(events.len());
    for event in events {
        let mut skeleton = event.clone();
        let mut taken = Vec::new();
        for Taken { slot, owner, value } in personal::split(&mut skeleton) {
            let owner = (&event.tenant_id, owner);
            let at = match owners.get(&owner) {
                Some(at) => *at,
                None => {
                    subjects.push(subject(owner.0, &owner.1));
                    owners.insert(owner, subjects.len() - 1);
                    subjects.len() - 1
                }
            };
            taken.push((at, slot, value));
        }
        split.push((skeleton, taken));
    }
    let made = keys.keys_for(&subjects).map_err(Error::Keys)?;
    let mut nonces = Nonces::new();
    let records = split.into_iter().map(|(skeleton, taken)| {
        if taken.is_empty() {
            return Ok(crate::encode(&skeleton));
        }
        let mut boxes: BTreeMap<KeyId, (&DataKey, Vec<u8>)> = BTreeMap::new();
        for (at, slot, value) in taken {
            let (id, key) = &made[at];
            let plain = &mut boxes.entry(*id).or_insert((key, Vec::new())).1;
            plain.extend_from_slice(&slot.to_le_bytes());
            plain.extend_from_slice(&(value.len() as u32).to_le_bytes());
            plain.extend_from_slice(value.as_bytes());
        }
        let count = u8::try_from(boxes.len()).map_err(|_| Error::Sealed("over 255 keys"))?;
        let inner = crate::encode(&skeleton);
        let mut record = Vec::with_capacity(2 + inner.len() + 128 * boxes.len());
        record.extend_from_slice(&[SEALED, count]);
        for (id, (key, plain)) in boxes {
            let aad = aad(&skeleton, &id);
            let sealed = rezef_keys::seal_with(&mut nonces, key, &aad, &plain);
            record.extend_from_slice(id.as_bytes());
            record.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
            record.extend_from_slice(&sealed);
        }
        record.extend_from_slice(&inner);
        Ok(record)
    });
    records.collect()
}

/// Decodes a record, opening its sealed values with the keys: an event whose keys were
/// destroyed reads erased. Records of the other formats read as [`crate::decode`] reads them.
pub fn decode_with(bytes: &[u8], keys: &dyn KeyStore) -> Result<Event> {
    let Some(record) = Record::parse(bytes)? else {
        return crate::decode(bytes);
    };
    let mut event = crate::decode(record.skeleton)?;
    for (id, sealed) in record.boxes {
        let Some(key) = keys.key(&id) else {
            event.erased = true;
            continue;
        };
        let plain = rezef_keys::open(&key, &aad(&event, &id), sealed).map_err(Error::Keys)?;
        for (slot, value) in values(&plain)? {
            if !personal::restore(&mut event, slot, value) {
                return Err(Error::Sealed("a value for a slot the event does not have"));
            }
        }
    }
    Ok(event)
}

/// The skeleton record inside a sealed one; any other record as it is.
pub(crate) fn skeleton(bytes: &[u8]) -> Result<&[u8]> {
    Ok(Record::parse(bytes)?.map_or(bytes, |record| record.skeleton))
}

/// The key ids a record's values are sealed under (none for the other formats).
pub fn key_ids(bytes: &[u8]) -> Result<Vec<KeyId>> {
    Ok(Record::parse(bytes)?.map_or_else(Vec::new, |r| r.boxes.into_iter().map(|b| b.0).collect()))
}

struct Record<'a> {
    boxes: Vec<(KeyId, &'a [u8])>,
    skeleton: &'a [u8],
}

impl<'a> Record<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Option<Self>> {
        let Some((&SEALED, rest)) = bytes.split_first() else {
            return Ok(None);
        };
        let (&count, mut rest) = rest
            .split_first()
            .ok_or(Error::Sealed("cut in its header"))?;
        let mut boxes = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let id = take(&mut rest, 16)?;
            let id = KeyId(
                id.try_into()
                    .map_err(|_| Error::Sealed("cut in a key id"))?,
            );
            let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().unwrap_or_default());
            boxes.push((id, take(&mut rest, len as usize)?));
        }
        if rest.first() == Some(&SEALED) {
            return Err(Error::Sealed("a sealed record inside another"));
        }
        Ok(Some(Self {
            boxes,
            skeleton: rest,
        }))
    }
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if bytes.len() < n {
        return Err(Error::Sealed("cut short"));
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

fn values(mut plain: &[u8]) -> Result<Vec<(u16, String)>> {
    let mut values = Vec::new();
    while !plain.is_empty() {
        let slot = u16::from_le_bytes(take(&mut plain, 2)?.try_into().unwrap_or_default());
        let len = u32::from_le_bytes(take(&mut plain, 4)?.try_into().unwrap_or_default());
        let value = String::from_utf8(take(&mut plain, len as usize)?.to_vec())
            .map_err(|_| Error::Sealed("a value that is not UTF-8"))?;
        values.push((slot, value));
    }
    Ok(values)
}

/// What a box is bound to: its event and its key.
fn aad(event: &Event, key: &KeyId) -> Vec<u8> {
    let mut aad = event.event_id.as_str().as_bytes().to_vec();
    aad.extend_from_slice(key.as_bytes());
    aad
}

/// Whether records are sealed, and under which keys: a node on the embedded log seals
/// (its key store is in its data directory); `Sealing::default()` stores every record plain
/// and reads sealed ones as their skeletons.
#[derive(Clone, Default)]
pub struct Sealing {
    keys: Option<Arc<dyn KeyStore>>,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealing")
            .field("sealed", &self.keys.is_some())
            .finish()
    }
}

impl Sealing {
    pub fn under(keys: Arc<dyn KeyStore>) -> Self {
        Self { keys: Some(keys) }
    }

    /// The key store, when records are sealed.
    pub fn keys(&self) -> Option<&Arc<dyn KeyStore>> {
        self.keys.as_ref()
    }

    /// The records of these events (may make keys: blocking I/O).
    pub fn encode_all(&self, events: &[Event]) -> Result<Vec<Vec<u8>>> {
        match &self.keys {
            Some(keys) => encode_all(events, keys.as_ref()),
            None => Ok(events.iter().map(crate::encode).collect()),
        }
    }

    /// The event of a record, its sealed values opened when the keys are here.
    pub fn decode(&self, bytes: &[u8]) -> Result<Event> {
        match &self.keys {
            Some(keys) => decode_with(bytes, keys.as_ref()),
            None => crate::decode(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use rezef_events::event::Participant;
    use rezef_events::testing::EventBuilder;
    use rezef_keys::FileKeyStore;

    use super::*;
    use crate::event::tests::every_payload;

    fn store() -> (tempfile::TempDir, FileKeyStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileKeyStore::open(dir.path()).expect("key store");
        (dir, store)
    }

    #[test]
    fn every_payload_reads_back_equal_and_its_personal_values_are_not_in_the_clear() {
        let (_dir, keys) = store();
        let events = every_payload();
        let records = encode_all(&events, &keys).expect("sealed");
        for (event, record) in events.iter().zip(&records) {
            assert_eq!(&decode_with(record, &keys).expect("opens"), event);
            let mut skeleton = event.clone();
            let taken = personal::split(&mut skeleton);
            assert_eq!(
                record[0] == SEALED,
                !taken.is_empty(),
                "{}",
                event.payload.name()
            );
            assert_eq!(crate::decode(record).expect("skeleton"), skeleton);
            for taken in taken.iter().filter(|t| t.value.len() >= 4) {
                let clear = record
                    .windows(taken.value.len())
                    .any(|w| w == taken.value.as_bytes());
                assert!(!clear, "{} shows {:?}", event.payload.name(), taken.value);
            }
        }
    }

    #[test]
    fn given_a_destroyed_key_when_read_then_the_event_is_its_skeleton_marked_erased() {
        let (_dir, keys) = store();
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let message = chat.message(Participant::Customer, "my card is 4580 1234");
        let record = &encode_all(std::slice::from_ref(&message), &keys).expect("sealed")[0];
        keys.destroy(&key_ids(record).expect("ids"))
            .expect("destroyed");
        let read = decode_with(record, &keys).expect("reads");
        assert!(read.erased);
        let mut skeleton = message.clone();
        personal::split(&mut skeleton);
        assert_eq!(
            Event {
                erased: false,
                ..read
            },
            skeleton
        );
        let other = chat.message(Participant::Customer, "still here");
        let record = &encode_all(std::slice::from_ref(&other), &keys).expect("sealed")[0];
        assert_eq!(
            decode_with(record, &keys).expect("opens"),
            other,
            "a new key"
        );
    }

    #[test]
    fn a_box_moved_to_another_event_or_changed_does_not_open() {
        let (_dir, keys) = store();
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let events = [
            chat.context("order", "A-1001"),
            chat.context("order", "A-1002"),
        ];
        let records = encode_all(&events, &keys).expect("sealed");
        let skeleton = |r: &[u8]| {
            Record::parse(r)
                .expect("parses")
                .expect("sealed")
                .skeleton
                .len()
        };
        // The second record's boxes in front of the first one's skeleton.
        let (first, second) = (&records[0], &records[1]);
        let mut moved = second[..second.len() - skeleton(second)].to_vec();
        moved.extend_from_slice(&first[first.len() - skeleton(first)..]);
        assert!(matches!(decode_with(&moved, &keys), Err(Error::Keys(_))));
        let mut changed = first.clone();
        changed[2 + 16 + 4 + 30] ^= 1;
        assert!(matches!(decode_with(&changed, &keys), Err(Error::Keys(_))));
    }

    #[test]
    fn malformed_sealed_records_are_errors_not_panics() {
        let (_dir, keys) = store();
        for bytes in [&[SEALED][..], &[SEALED, 1, 0, 0], &[SEALED, 0, SEALED, 0]] {
            assert!(
                matches!(decode_with(bytes, &keys), Err(Error::Sealed(_))),
                "{bytes:?}"
            );
            assert!(
                matches!(crate::decode(bytes), Err(Error::Sealed(_))),
                "{bytes:?}"
            );
        }
    }
}
